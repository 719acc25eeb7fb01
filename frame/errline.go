package frame

import "bytes"

// MaxReason is the longest reason AppendError writes, in bytes; an -ERR
// line is therefore at most 6+MaxReason bytes, which bounds what a client
// must buffer to read one.
const MaxReason = 256

// AppendError appends the error reply "-ERR <reason>\n" to dst. Control
// bytes in reason (CR and LF among them) become spaces, so the reply is
// always exactly one line, and reason is cut to MaxReason bytes.
func AppendError(dst []byte, reason string) []byte {
	dst = append(dst, "-ERR "...)
	if len(reason) > MaxReason {
		reason = reason[:MaxReason]
	}
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}

// ParseError reports whether line is an error reply and returns its
// reason. line is one line, with or without its "\n" (and a "\r" before
// it, which is dropped).
func ParseError(line []byte) (reason string, ok bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	rest, ok := bytes.CutPrefix(line, []byte("-ERR "))
	if !ok || bytes.IndexByte(rest, '\n') >= 0 {
		return "", false
	}
	return string(rest), true
}
