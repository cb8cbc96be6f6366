package images

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress shows one stand-in's build: on a terminal a status line with a
// spinner, the elapsed time and the current step; otherwise one plain line per
// step ("  [ 12.3s] building kubelet").
type progress struct {
	out   io.Writer
	tty   bool
	name  string
	start time.Time

	mu      sync.Mutex
	current string
	done    chan struct{}
	stopped chan struct{}
}

func newProgress(out io.Writer, tty bool, name string) *progress {
	return &progress{out: out, tty: tty, name: name}
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *progress) begin() {
	p.start = time.Now()
	if !p.tty {
		fmt.Fprintf(p.out, "• building %s\n", p.name)
		return
	}
	p.done = make(chan struct{})
	p.stopped = make(chan struct{})
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			p.mu.Lock()
			fmt.Fprintf(p.out, "\r\033[K%s building %s [%6.1fs] %s", spinner[i%len(spinner)], p.name, time.Since(p.start).Seconds(), p.current)
			p.mu.Unlock()
			select {
			case <-p.done:
				return
			case <-t.C:
			}
		}
	}()
}

// step records the step that starts now.
func (p *progress) step(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current = s
	if !p.tty {
		fmt.Fprintf(p.out, "  [%6.1fs] %s\n", time.Since(p.start).Seconds(), s)
	}
}

// end stops the status line and returns the elapsed time.
func (p *progress) end() time.Duration {
	if p.tty && p.done != nil {
		close(p.done)
		<-p.stopped
		fmt.Fprint(p.out, "\r\033[K")
	}
	return time.Since(p.start)
}

// formatDuration prints 1.2s below a minute and 17m3s above.
func formatDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
