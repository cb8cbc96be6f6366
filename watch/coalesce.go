package watch

import (
	"sort"
	"time"
)

// Clock is the time source of the coalescing step; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// change is what the event reader hands to the coalescer: one routed event.
type change struct {
	at       time.Time
	service  map[string][]string // service -> paths relative to its root
	config   bool
	overflow bool
}

// pending accumulates changes until they are handed out as a Batch.
type pending struct {
	services map[string]map[string]struct{}
	paths    int // in services, all together
	config   bool
	overflow bool
	first    time.Time // the earliest change's time
}

func (p *pending) add(c change) {
	if p.services == nil {
		p.services = map[string]map[string]struct{}{}
	}
	for svc, paths := range c.service {
		set := p.services[svc]
		if set == nil {
			set = map[string]struct{}{}
			p.services[svc] = set
		}
		for _, rel := range paths {
			if _, ok := set[rel]; !ok {
				set[rel] = struct{}{}
				p.paths++
			}
		}
	}
	p.config = p.config || c.config
	p.overflow = p.overflow || c.overflow
	p.seen(c.at)
}

// seen keeps t as the batch's first change's time when it is earlier.
func (p *pending) seen(t time.Time) {
	if !t.IsZero() && (p.first.IsZero() || t.Before(p.first)) {
		p.first = t
	}
}

func (p *pending) merge(q pending) {
	for svc, set := range q.services {
		c := change{service: map[string][]string{svc: nil}}
		for rel := range set {
			c.service[svc] = append(c.service[svc], rel)
		}
		p.add(c)
	}
	p.config = p.config || q.config
	p.overflow = p.overflow || q.overflow
	p.seen(q.first)
}

func (p *pending) empty() bool { return len(p.services) == 0 && !p.config && !p.overflow }

func (p *pending) batch() Batch {
	b := Batch{Services: map[string][]string{}, Config: p.config, Overflow: p.overflow, First: p.first}
	for svc, set := range p.services {
		paths := make([]string, 0, len(set))
		for rel := range set {
			paths = append(paths, rel)
		}
		sort.Strings(paths)
		b.Services[svc] = paths
	}
	return b
}

// coalescer is the debounce state machine: a batch is due once quiet has
// passed since the last change (short, when set, while the batch holds at
// most shortPaths paths and no config change or overflow), or max since
// the first one.
type coalescer struct {
	quiet, short, max time.Duration
	first, last       time.Time
	p                 pending
}

// shortPaths is how many paths a batch holds at most for the short quiet
// period: an editor's save writes the file and perhaps a backup, a
// temporary file it renames, a lock file (vim, JetBrains' safe write,
// Emacs); a checkout or a generator writes more, and gets the long one.
const shortPaths = 4

func (c *coalescer) add(ch change) {
	if c.p.empty() {
		c.first = ch.at
	}
	c.last = ch.at
	c.p.add(ch)
}

// active reports whether changes are waiting.
func (c *coalescer) active() bool { return !c.p.empty() }

// wait returns how long from now until the batch is due (zero if it is).
func (c *coalescer) wait(now time.Time) time.Duration {
	quiet := c.quiet
	if c.short > 0 && c.short < quiet && c.p.paths <= shortPaths && !c.p.config && !c.p.overflow {
		quiet = c.short
	}
	due := c.last.Add(quiet)
	if capAt := c.first.Add(c.max); capAt.Before(due) {
		due = capAt
	}
	if d := due.Sub(now); d > 0 {
		return d
	}
	return 0
}

func (c *coalescer) take() pending {
	p := c.p
	c.p = pending{}
	return p
}

// coalesce runs until done is closed: it reads changes from in and sends
// batches to out. It never blocks on out: while the consumer is busy, new
// changes are folded into the batch that waits to be taken.
func coalesce(done <-chan struct{}, clock Clock, quiet, short, max time.Duration, in <-chan change, out chan<- Batch) {
	c := &coalescer{quiet: quiet, short: short, max: max}
	var (
		timer <-chan time.Time
		ready *pending
		b     Batch // ready as a Batch
	)
	for {
		var send chan<- Batch
		if ready != nil {
			send = out
		}
		select {
		case <-done:
			return
		case ch := <-in:
			c.add(ch)
			if timer == nil {
				timer = clock.After(c.wait(ch.at))
			}
		case <-timer:
			timer = nil
			if !c.active() {
				continue
			}
			now := clock.Now()
			if d := c.wait(now); d > 0 {
				timer = clock.After(d)
				continue
			}
			p := c.take()
			if ready == nil {
				ready = &p
			} else {
				ready.merge(p)
			}
			b = ready.batch()
		case send <- b:
			ready = nil
		}
	}
}
