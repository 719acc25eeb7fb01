package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/subordinate/subordinate/bench"
)

// printReasons writes the first error of each kind the run met, one per
// line, under the summary's error counts.
func printReasons(w io.Writer, r bench.Report) {
	for _, k := range sortedKeys(r.Errors) {
		if why, ok := r.Reasons[k]; ok {
			fmt.Fprintf(w, "    %s: %s\n", k, why)
		}
	}
}

// explainNothing says why a run measured no request, with what to try,
// on w (stderr): the server's -ERR line, a server that does not echo, a
// TLS failure by its reason, nothing listening.
func explainNothing(w io.Writer, addr string, useTLS bool, r bench.Report) {
	if r.ErrorTotal == 0 {
		fmt.Fprintf(w, "subordinate bench: measured nothing: no request was answered before the run ended, and no error\n")
		fmt.Fprintf(w, "    the server did not echo: is it running --handler echo? (or it answers slower than --duration; a request counts as a timeout after --timeout)\n")
		return
	}
	fmt.Fprintf(w, "subordinate bench: measured nothing:\n")
	for _, k := range sortedKeys(r.Errors) {
		why := r.Reasons[k]
		if why == "" {
			why = k + " errors"
		}
		fmt.Fprintf(w, "  %s\n", why)
		if hint := benchHint(k, why, addr, useTLS, r.KeyFrom); hint != "" {
			fmt.Fprintf(w, "    %s\n", hint)
		}
	}
}

// benchHint is what to try after errors of kind k whose first reason is
// why; keyFrom is the run's --key-from ("" for the preamble).
func benchHint(k, why, addr string, useTLS bool, keyFrom string) string {
	if hint := keyFromHint(k, why, keyFrom); hint != "" {
		return hint
	}
	switch k {
	case bench.KindConnect:
		return "is the server running and listening on " + addr + "?"
	case bench.KindPreamble:
		switch {
		case strings.Contains(why, "key too long"):
			return "bench's keys are k0 to k<--keys - 1>: fewer --keys, or a larger --max-key on the server"
		case strings.Contains(why, "server busy"):
			return "the server is at its --max-conns: fewer --conns, or a larger --max-conns on the server"
		}
	case bench.KindMismatch, bench.KindShortRead:
		if !useTLS && strings.Contains(why, `"\x15\x03`) {
			return "the server answered with a TLS alert: it speaks TLS here; add --tls"
		}
		if strings.Contains(why, "after 0 of") && !useTLS {
			return "the server closed without a reply: is it running --handler echo? If --addr is a tls:// listener, add --tls"
		}
		return "the server did not echo: is it running --handler echo? (bench measures echo round trips; chat and whoami reply with lines of their own)"
	case bench.KindTLS:
		switch {
		case strings.HasPrefix(why, "untrusted certificate"):
			return "trust its CA with --tls-ca FILE, or skip verification with --tls-insecure"
		case strings.HasPrefix(why, "wrong name"):
			return "give the name the certificate is for with --tls-server-name NAME, or skip verification with --tls-insecure"
		case strings.HasPrefix(why, "expired"):
			return "renew the server's certificate, or skip verification with --tls-insecure"
		case strings.HasPrefix(why, "not a TLS server"):
			return "drop --tls, or point --addr at the server's tls:// listener"
		}
	case bench.KindReset:
		if !useTLS {
			return "the server reset the connection: if --addr is a tls:// listener, add --tls; otherwise see the server's log"
		}
	case bench.KindTimeout:
		return "no answer within --timeout: does the server's --frame match bench's --frame?"
	}
	return ""
}

// echoedPreamble matches a mismatch reason whose reply starts with a key
// line ("k123\n"): a server that echoed the preamble it did not read.
var echoedPreamble = regexp.MustCompile(`got back "k[0-9]+\\n`)

// keyFromHint is what to try when the server and bench disagree on where
// keys are (serve --key-from against bench --key-from), or "".
func keyFromHint(k, why, keyFrom string) string {
	switch {
	case k == bench.KindMismatch && keyFrom == "" && strings.Contains(why, `got back "HTTP/1.`):
		return "the server answered with HTTP: it reads keys from an HTTP request (serve --key-from http-*); give bench the same --key-from"
	case k == bench.KindMismatch && keyFrom == "" && echoedPreamble.MatchString(why):
		return "the server echoed bench's preamble: it does not read keys from a preamble (serve --key-from sni, client-ip...); give bench the same --key-from"
	case k == bench.KindPreamble && strings.HasPrefix(keyFrom, "http-") && strings.Contains(why, "HTTP/1.1 400"):
		return "the server found no key in bench's request: does its --key-from name the same header, cookie, path segment or query parameter as bench's --key-from " + keyFrom + "?"
	case k == bench.KindPreamble && strings.HasPrefix(keyFrom, "http-") && strings.Contains(why, "HTTP/1.1 503"):
		return "the server is at its --max-conns: fewer --conns, or a larger --max-conns on the server"
	case k == bench.KindMismatch && strings.HasPrefix(keyFrom, "http-") && strings.Contains(why, `got back "`) && !strings.Contains(why, `got back "GET `):
		return "the server did not echo bench's request head: does it read keys from an HTTP request (serve --key-from " + keyFrom + ") and run --handler echo?"
	}
	return ""
}
