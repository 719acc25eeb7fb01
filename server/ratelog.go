package server

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Refusal logging: a flood of bad connections (garbage, plaintext on a
// TLS port, handshakes that time out) must not fill a disk with one line
// per connection. Each reason gets refusalBurst lines per
// refusalInterval; the rest are counted, and one summary line per
// interval, "refused connections (suppressed)", gives the counts per
// reason.
const (
	refusalBurst    = 5
	refusalInterval = 10 * time.Second
	// refusalReasons bounds the reasons kept apart (a reason may carry
	// an error's text): the others are counted under "other".
	refusalReasons = 64
)

// rateLog logs the first burst events of each reason per interval and
// counts the rest. The summary of an interval is logged by the first
// call that sees the interval ended, or by a timer armed at the
// interval's first suppressed event, or by close. It is safe for
// concurrent use (the loop and the TLS handshake goroutines share one);
// it is not on the data path of served connections, so one mutex does.
type rateLog struct {
	log      *slog.Logger
	burst    int
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	start      time.Time      // of the current interval
	seen       map[string]int // events per reason in this interval
	suppressed map[string]int // events not logged in this interval
	totals     map[string]uint64
	timer      *time.Timer // flushes the interval's summary
	closed     bool
}

func newRateLog(log *slog.Logger, burst int, interval time.Duration) *rateLog {
	return &rateLog{
		log:        log,
		burst:      burst,
		interval:   interval,
		now:        time.Now,
		seen:       make(map[string]int),
		suppressed: make(map[string]int),
		totals:     make(map[string]uint64),
	}
}

// Info logs msg at INFO with reasonKey=reason and args, unless reason has
// had its burst of lines in this interval: then it only counts it.
func (l *rateLog) Info(msg, reasonKey, reason string, args ...any) {
	l.mu.Lock()
	now := l.now()
	if now.Sub(l.start) >= l.interval {
		l.flushLocked(now)
	}
	if _, ok := l.seen[reason]; !ok && len(l.seen) >= refusalReasons {
		reason = "other"
	}
	l.seen[reason]++
	if len(l.totals) < refusalReasons || l.totals[reason] > 0 {
		l.totals[reason]++
	} else {
		l.totals["other"]++
	}
	if l.seen[reason] > l.burst {
		l.suppressed[reason]++
		if l.timer == nil && !l.closed {
			l.timer = time.AfterFunc(l.start.Add(l.interval).Sub(now), l.flush)
		}
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.log.Info(msg, append([]any{reasonKey, reason}, args...)...)
}

// flush logs the summary of the interval if it ended (the timer's call).
func (l *rateLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if now := l.now(); now.Sub(l.start) >= l.interval {
		l.flushLocked(now)
	} else if len(l.suppressed) > 0 && !l.closed {
		l.timer = time.AfterFunc(l.start.Add(l.interval).Sub(now), l.flush)
	}
}

// flushLocked logs the summary of the interval that ends, if anything was
// suppressed in it, and starts a new interval at now.
func (l *rateLog) flushLocked(now time.Time) {
	if len(l.suppressed) > 0 {
		reasons := make([]string, 0, len(l.suppressed))
		total := 0
		for r, n := range l.suppressed {
			reasons = append(reasons, r)
			total += n
		}
		sort.Strings(reasons)
		counts := make([]any, 0, len(reasons))
		for _, r := range reasons {
			counts = append(counts, slog.Int(r, l.suppressed[r]))
		}
		// Logged under the mutex: summaries stay in order.
		l.log.Info("refused connections (suppressed)", "suppressed", total,
			"interval", now.Sub(l.start).Round(time.Millisecond), slog.Group("reasons", counts...))
	}
	clear(l.seen)
	clear(l.suppressed)
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.start = now
}

// close logs what the current interval suppressed and stops the timer:
// call it when the shard stops.
func (l *rateLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.flushLocked(l.now())
}

// Totals returns the number of events per reason since the start,
// logged or not (for metrics).
func (l *rateLog) Totals() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]uint64, len(l.totals))
	for r, n := range l.totals {
		m[r] = n
	}
	return m
}
