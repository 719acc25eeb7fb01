package keysrc

import (
	"iter"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// maxReason bounds the reason HTTPResponse writes, in bytes.
const maxReason = 512

// HTTPResponse appends to dst a complete HTTP/1.1 response with status
// and its standard text (400 Bad Request, 408 Request Timeout, 414, 431,
// 503 Service Unavailable...), a text/plain body of reason and a newline,
// and "Connection: close": what the server answers before it closes a
// connection it refuses to route. reason may hold the client's bytes: it
// is cut to 512 bytes, its control characters become spaces and invalid
// UTF-8 becomes U+FFFD, so it cannot break the response. A status outside
// 100-999 is written as 500.
func HTTPResponse(dst []byte, status int, reason string) []byte {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	body := 1
	for r := range sanitized(reason) {
		body += utf8.RuneLen(r)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(body), 10)
	dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	for r := range sanitized(reason) {
		dst = utf8.AppendRune(dst, r)
	}
	return append(dst, '\n')
}

// sanitized yields the runes of reason as HTTPResponse writes them: control
// characters as spaces, invalid UTF-8 as U+FFFD, no more than maxReason
// bytes in all.
func sanitized(reason string) iter.Seq[rune] {
	return func(yield func(rune) bool) {
		n := 0
		for _, r := range reason {
			if r < ' ' || r == 0x7f {
				r = ' '
			}
			n += utf8.RuneLen(r)
			if n > maxReason || !yield(r) {
				return
			}
		}
	}
}
