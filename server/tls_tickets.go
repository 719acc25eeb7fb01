package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
)

// TLS session resumption on any worker. crypto/tls encrypts a session
// ticket with a key of the server's; a client that presents the ticket to
// a server holding the same key resumes its session (no certificate, no
// key exchange signature: the cheap handshake). Left to itself, each
// worker's crypto/tls would make keys of its own, and a client whose next
// connection is accepted by another worker would make a full handshake.
// So the master makes the keys (crypto/rand, at start), rotates them
// every Config.TicketKeyRotation and gives them to every worker over the
// control channel: in the init message (a restarted worker gets the keys
// in use) and in a tickets message at each rotation. An upgrade hands them
// to the new master (the upgrade message), whose workers go on with them.
// The keys never appear in argv, the environment or a log.

// ticketKeysKept is how many keys the workers hold: the current one,
// which encrypts new tickets, and the two before it, which still decrypt
// (a ticket resumes for 2 to 3 rotation periods).
const ticketKeysKept = 3

// ticketKeySize is the size of a session ticket key
// (tls.Config.SetSessionTicketKeys).
const ticketKeySize = 32

// ticketRing is the master's session ticket keys and their rotation
// schedule. It is touched by the supervisor's goroutine only; its clock
// is what its callers pass (tests drive it without sleeping).
type ticketRing struct {
	period time.Duration
	// keys are newest first: keys[0] encrypts, all decrypt; at most
	// ticketKeysKept.
	keys [][ticketKeySize]byte
	// next is when the next rotation is due.
	next time.Time
	// rotation counts the rotations so far (carried over an upgrade).
	rotation uint64
	rand     io.Reader
}

// newTicketRing makes the keys: those inherited from an old master (an
// upgrade; nil otherwise) if any is good, else one fresh random key. The
// first rotation is due one period after now. It returns how many
// inherited keys were refused (not 32 bytes, or beyond ticketKeysKept).
func newTicketRing(period time.Duration, now time.Time, inherited *ctl.Tickets, rnd io.Reader) (*ticketRing, int, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	r := &ticketRing{period: period, next: now.Add(period), rand: rnd}
	refused := 0
	if inherited != nil {
		for _, k := range inherited.Keys {
			if len(k) != ticketKeySize || len(r.keys) == ticketKeysKept {
				refused++
				continue
			}
			r.keys = append(r.keys, [ticketKeySize]byte(k))
		}
		if len(r.keys) > 0 {
			r.rotation = inherited.Rotation
		}
	}
	if len(r.keys) == 0 {
		k, err := r.newKey()
		if err != nil {
			return nil, refused, err
		}
		r.keys = [][ticketKeySize]byte{k}
	}
	return r, refused, nil
}

func (r *ticketRing) newKey() ([ticketKeySize]byte, error) {
	var k [ticketKeySize]byte
	if _, err := io.ReadFull(r.rand, k[:]); err != nil {
		return k, fmt.Errorf("generate a TLS session ticket key: %w", err)
	}
	return k, nil
}

// advance makes the rotations due by now, one per period elapsed (at most
// ticketKeysKept: past that every key is new anyway), and returns how many
// it made. On error the keys stay and the next attempt is one period
// later.
func (r *ticketRing) advance(now time.Time) (int, error) {
	n := 0
	for !now.Before(r.next) {
		if n == ticketKeysKept {
			r.next = now.Add(r.period)
			break
		}
		k, err := r.newKey()
		if err != nil {
			r.next = now.Add(r.period)
			return n, err
		}
		keep := min(len(r.keys), ticketKeysKept-1)
		r.keys = append([][ticketKeySize]byte{k}, r.keys[:keep]...)
		r.rotation++
		r.next = r.next.Add(r.period)
		n++
	}
	return n, nil
}

// wire returns a copy of the keys for a control message.
func (r *ticketRing) wire() *ctl.Tickets {
	if r == nil {
		return nil
	}
	t := &ctl.Tickets{Keys: make([][]byte, len(r.keys)), Rotation: r.rotation}
	for i := range r.keys {
		t.Keys[i] = append([]byte(nil), r.keys[i][:]...)
	}
	return t
}

// hasTLSListener reports whether cfg listens on a tls:// address.
func hasTLSListener(cfg *Config) bool {
	for _, l := range cfg.Listen {
		if a, err := ParseListenURL(l); err == nil && a.TLS {
			return true
		}
	}
	return false
}

// newMasterTickets makes the master's ticket keys when it has a tls://
// listener (nil otherwise), from those of the old master in an upgrade.
func newMasterTickets(cfg *Config, inh *inheritance, log *slog.Logger) (*ticketRing, error) {
	if !hasTLSListener(cfg) {
		return nil, nil
	}
	var inherited *ctl.Tickets
	if inh != nil {
		inherited = inh.tickets
	}
	r, refused, err := newTicketRing(cfg.TicketKeyRotation, time.Now(), inherited, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case inherited != nil && refused == len(inherited.Keys) && refused > 0:
		log.Warn("upgrade: the old master's TLS session ticket keys are unusable; made new ones (its sessions make a full handshake)", "refused", refused)
	case inherited != nil && len(inherited.Keys) > 0:
		log.Info("upgrade: took over the old master's TLS session ticket keys", "keys", len(r.keys), "rotation", r.rotation)
	}
	return r, nil
}

// ticketC is the channel of the rotation timer: nil (never ready) without
// a tls:// listener.
func (s *supervisor) ticketC() <-chan time.Time {
	if s.ticketTimer == nil {
		return nil
	}
	return s.ticketTimer.C
}

// armTickets sets the rotation timer to the next rotation (at once if it
// is overdue).
func (s *supervisor) armTickets() {
	if s.tickets == nil {
		return
	}
	d := time.Until(s.tickets.next)
	if s.ticketTimer == nil {
		s.ticketTimer = time.NewTimer(d)
		return
	}
	s.ticketTimer.Reset(d)
}

// stopTickets stops the rotation timer.
func (s *supervisor) stopTickets() {
	if s.ticketTimer != nil {
		s.ticketTimer.Stop()
	}
}

// rotateTickets runs when a rotation is due: new keys, sent to every
// worker alive (one starting later gets them in its init). While an
// upgrade is under way the keys stay as they are, so that the old and
// the new generation share them; a failed upgrade re-arms the timer.
func (s *supervisor) rotateTickets() {
	if s.state != running || s.upg != nil {
		return
	}
	n, err := s.tickets.advance(time.Now())
	s.armTickets()
	if err != nil {
		s.log.Error("cannot rotate the TLS session ticket keys; the current ones stay", "err", err)
	}
	if n == 0 {
		return
	}
	for _, w := range s.workers {
		if w.alive {
			s.send(w, &ctl.Message{Type: ctl.TypeTickets, Tickets: s.tickets.wire()})
		}
	}
	s.log.Info("TLS session ticket keys rotated", "rotation", s.tickets.rotation, "keys", len(s.tickets.keys), "every", s.tickets.period)
}

// ticketKeySetter is implemented by a shard runtime that serves TLS and
// takes the master's session ticket keys (the routed runtime).
type ticketKeySetter interface {
	SetTicketKeys(t *ctl.Tickets) error
}

// installTickets gives the runtime the keys of an init or tickets
// message. Bad keys are logged (never their bytes) and the runtime keeps
// what it had: resumption then works on this worker only, nothing else
// is disturbed.
func installTickets(rt shardRuntime, t *ctl.Tickets, log *slog.Logger) {
	ts, ok := rt.(ticketKeySetter)
	if !ok || t == nil {
		return
	}
	if err := ts.SetTicketKeys(t); err != nil {
		log.Error("bad TLS session ticket keys from the master; sessions resume on this worker only", "err", err)
		return
	}
	log.Debug("TLS session ticket keys installed", "rotation", t.Rotation, "keys", len(t.Keys))
}

// errNoTicketKeys is SetTicketKeys given no key.
var errNoTicketKeys = errors.New("no session ticket key")

// ticketKeysOf checks the keys of a control message.
func ticketKeysOf(t *ctl.Tickets) ([][ticketKeySize]byte, error) {
	if len(t.Keys) == 0 {
		return nil, errNoTicketKeys
	}
	keys := make([][ticketKeySize]byte, len(t.Keys))
	for i, k := range t.Keys {
		if len(k) != ticketKeySize {
			return nil, fmt.Errorf("session ticket key %d is %d bytes, want %d", i, len(k), ticketKeySize)
		}
		keys[i] = [ticketKeySize]byte(k)
	}
	return keys, nil
}

// SetTicketKeys implements ticketKeySetter: every handshake from now on
// encrypts tickets with the first key and decrypts with any. Without a
// tls:// listener it does nothing.
func (r *routed) SetTicketKeys(t *ctl.Tickets) error {
	if r.certs == nil {
		return nil
	}
	keys, err := ticketKeysOf(t)
	if err != nil {
		return err
	}
	r.certs.setTicketKeys(keys)
	return nil
}

// setTicketKeys makes keys the session ticket keys of the configuration
// in use and of every one a reload builds from now on (tls_reload.go).
func (s *certStore) setTicketKeys(keys [][ticketKeySize]byte) {
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	s.ticketKeys = keys
	s.server.SetSessionTicketKeys(keys)
	s.cur.Load().SetSessionTicketKeys(keys)
}
