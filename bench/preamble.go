package bench

import "github.com/subordinate/subordinate/frame"

// directTokens computes the direct preamble's token of every shard once,
// so that a connection costs no HMAC.
func directTokens(cfg *Config) []frame.Token {
	if cfg.Frame != FrameDirect && cfg.Frame != FrameDirectBinary {
		return nil
	}
	toks := make([]frame.Token, cfg.Shards)
	for i := range toks {
		toks[i] = frame.DirectToken(cfg.Secret, uint32(i))
	}
	return toks
}

// appendPreamble appends the preamble for key index i to dst (docs/PROTOCOL.md):
// the key "k<i>" in the line or binary encoding, or a direct preamble for
// shard i mod Shards.
func (w *worker) appendPreamble(dst []byte, i int) []byte {
	var err error
	out := dst
	switch cfg := &w.r.cfg; cfg.Frame {
	case FrameLine, FrameBinary:
		enc := frame.Line
		if cfg.Frame == FrameBinary {
			enc = frame.Binary
		}
		w.key = appendKey(w.key[:0], i)
		out, err = frame.AppendKey(dst, enc, w.key)
	case FrameDirect, FrameDirectBinary:
		enc := frame.Line
		if cfg.Frame == FrameDirectBinary {
			enc = frame.Binary
		}
		shard := uint32(i % cfg.Shards)
		out, err = frame.AppendDirectToken(dst, enc, shard, w.r.tokens[shard])
	}
	if err != nil {
		panic("bench: preamble: " + err.Error()) // keys "k<i>" always encode
	}
	return out
}
