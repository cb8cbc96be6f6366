package fakebroker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxFrame bounds one Kafka request or response frame.
const maxFrame = 256 << 20

// proxy forwards Kafka protocol connections to the internal listener and
// rewrites broker addresses in the responses that carry them.
type proxy struct {
	backend string
	host    string
	port    int32
	log     io.Writer

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(backend, advertised string, log io.Writer) *proxy {
	h, ps, _ := net.SplitHostPort(advertised) // validated by Config.validate
	port, _ := strconv.Atoi(ps)
	return &proxy{backend: backend, host: h, port: int32(port), log: log, conns: map[net.Conn]struct{}{}}
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.handle(c)
		}()
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// closeAll closes every open client connection and waits for their handlers.
func (p *proxy) closeAll() {
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

type request struct{ key, version int16 }

func (p *proxy) handle(client net.Conn) {
	defer client.Close()
	backend, err := net.Dial("tcp", p.backend)
	if err != nil {
		fmt.Fprintf(p.log, "fakebroker: external listener: dialing broker %s: %v\n", p.backend, err)
		return
	}
	defer backend.Close()

	var mu sync.Mutex
	pending := map[int32]request{} // by correlation ID

	done := make(chan struct{})
	go func() { // client -> broker
		defer close(done)
		defer backend.Close()
		r := bufio.NewReader(client)
		for {
			f, err := readFrame(r)
			if err != nil || len(f) < 8 {
				return
			}
			req := request{key: int16(binary.BigEndian.Uint16(f[0:])), version: int16(binary.BigEndian.Uint16(f[2:]))}
			corr := int32(binary.BigEndian.Uint32(f[4:]))
			mu.Lock()
			pending[corr] = req
			mu.Unlock()
			if err := writeFrame(backend, f); err != nil {
				return
			}
		}
	}()
	defer func() { <-done }()
	defer client.Close()

	r := bufio.NewReader(backend) // broker -> client
	for {
		f, err := readFrame(r)
		if err != nil || len(f) < 4 {
			return
		}
		corr := int32(binary.BigEndian.Uint32(f[0:]))
		mu.Lock()
		req, ok := pending[corr]
		delete(pending, corr)
		mu.Unlock()
		if ok {
			nf, err := rewrite(req, f, p.host, p.port)
			if err != nil {
				fmt.Fprintf(p.log, "fakebroker: external listener: rewriting response to key %d v%d: %v\n", req.key, req.version, err)
			} else {
				f = nf
			}
		}
		if err := writeFrame(client, f); err != nil {
			return
		}
	}
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes is too large", n)
	}
	buf := make([]byte, n)
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func writeFrame(w io.Writer, b []byte) error {
	out := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(out, uint32(len(b)))
	_, err := w.Write(append(out, b...))
	return err
}

// rewrite replaces every broker host/port in a Metadata, FindCoordinator or
// DescribeCluster response frame (correlation ID first, no size prefix) with
// host:port, and returns other frames unchanged.
func rewrite(req request, frame []byte, host string, port int32) ([]byte, error) {
	var resp kmsg.Response
	switch req.key {
	case kmsg.Metadata.Int16(), kmsg.FindCoordinator.Int16(), kmsg.DescribeCluster.Int16():
		resp = kmsg.ResponseForKey(req.key)
	default:
		return frame, nil
	}
	resp.SetVersion(req.version)
	hdr, err := responseHeaderLen(frame, resp.IsFlexible())
	if err != nil {
		return nil, err
	}
	if err := resp.ReadFrom(frame[hdr:]); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			r.Brokers[i].Host, r.Brokers[i].Port = host, port
		}
	case *kmsg.FindCoordinatorResponse:
		if r.Host != "" {
			r.Host, r.Port = host, port
		}
		for i := range r.Coordinators {
			if r.Coordinators[i].Host != "" {
				r.Coordinators[i].Host, r.Coordinators[i].Port = host, port
			}
		}
	case *kmsg.DescribeClusterResponse:
		for i := range r.Brokers {
			r.Brokers[i].Host, r.Brokers[i].Port = host, port
		}
	}
	out := append([]byte(nil), frame[:hdr]...)
	return resp.AppendTo(out), nil
}

// responseHeaderLen returns the length of the response header: the 4-byte
// correlation ID, plus, for flexible versions, the tagged fields after it.
func responseHeaderLen(frame []byte, flexible bool) (int, error) {
	n := 4
	if !flexible {
		return n, nil
	}
	b := frame[n:]
	count, l := binary.Uvarint(b)
	if l <= 0 {
		return 0, errors.New("malformed response header tags")
	}
	b, n = b[l:], n+l
	for range count {
		_, l1 := binary.Uvarint(b)
		if l1 <= 0 {
			return 0, errors.New("malformed response header tag")
		}
		size, l2 := binary.Uvarint(b[l1:])
		if l2 <= 0 || uint64(len(b)) < uint64(l1+l2)+size {
			return 0, errors.New("malformed response header tag")
		}
		skip := l1 + l2 + int(size)
		b, n = b[skip:], n+skip
	}
	return n, nil
}
