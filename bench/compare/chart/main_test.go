package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
)

const sample = `{"date":"2026-11-24T20:00:00Z","machine":{"nproc":2,"cpu":"Test <CPU>","pinning":"none"},
"rows":[{"id":"gnet","label":"raw gnet"},{"id":"sub1","label":"Subordinate & co"},{"id":"node","label":"Node","error":"not installed"}],
"workloads":[{"id":"pingpong","label":"ping-pong"},{"id":"connect","label":"connect"}],
"cells":[{"row":"gnet","workload":"pingpong","median":{"runs":3,"rps":120000,"p99_us":250,"server_cpu_us_per_req":4.2}},
{"row":"sub1","workload":"pingpong","median":{"runs":3,"rps":100000,"p99_us":300,"server_cpu_us_per_req":5.1}},
{"row":"gnet","workload":"connect","median":{"runs":3,"rps":14000,"p99_us":900,"server_cpu_us_per_req":40}}]}`

// TestDrawWellFormed checks the SVG parses as XML, escapes labels, has one
// bar per measured cell and panel, and leaves out a row that was not
// measured.
func TestDrawWellFormed(t *testing.T) {
	var r results
	if err := json.Unmarshal([]byte(sample), &r); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	draw(&buf, &r)
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	bars := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, buf.String())
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
			bars++
		}
	}
	if bars != 3*3 {
		t.Fatalf("%d bars, want 9 (3 cells x 3 panels)", bars)
	}
	s := buf.String()
	if !strings.Contains(s, "Subordinate &amp; co") || strings.Contains(s, ">Node<") {
		t.Fatalf("labels: escaped label missing or unmeasured row drawn")
	}
}

func TestNiceScale(t *testing.T) {
	for _, c := range []struct{ max, top, step float64 }{
		{0, 1, 0.25}, {9, 10, 2}, {120000, 150000, 50000}, {3.7, 4, 1},
	} {
		top, step := niceScale(c.max)
		if top != c.top || step != c.step {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", c.max, top, step, c.top, c.step)
		}
	}
}

func TestHuman(t *testing.T) {
	for in, want := range map[float64]string{1234567: "1.23M", 45000: "45k", 1500: "1.5k", 250: "250", 12.5: "12.5", 4.2: "4.2", 0: "0"} {
		if got := human(in); got != want {
			t.Errorf("human(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestLegendWraps checks the legend of every row the runner has stays
// inside the chart, on more than one line, and pushes the panels down.
func TestLegendWraps(t *testing.T) {
	var r results
	if err := json.Unmarshal([]byte(sample), &r); err != nil {
		t.Fatal(err)
	}
	var short bytes.Buffer
	draw(&short, &r)
	r.Rows = r.Rows[:0]
	for _, l := range []string{"raw gnet, 1 loop", "Subordinate, 1 worker", "Subordinate, N workers, handoff",
		"Subordinate, N workers, relay", "HAProxy -> N backends", "Node.js cluster, N workers", "Go net, goroutine per conn"} {
		r.Rows = append(r.Rows, struct {
			ID    string `json:"id"`
			Label string `json:"label"`
			Error string `json:"error"`
		}{ID: l, Label: l})
	}
	var long bytes.Buffer
	draw(&long, &r)
	dec := xml.NewDecoder(bytes.NewReader(long.Bytes()))
	lines := map[string]bool{}
	var svgH string
	checked := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := map[string]string{}
		for _, a := range se.Attr {
			attr[a.Name.Local] = a.Value
		}
		switch {
		case se.Name.Local == "svg":
			svgH = attr["height"]
		case se.Name.Local == "rect" && attr["width"] == "12":
			lines[attr["y"]] = true
			var label string
			if err := dec.DecodeElement(new(struct{}), &se); err != nil {
				t.Fatal(err)
			}
			if tok, err := dec.Token(); err == nil { // the label's <text>
				if te, ok := tok.(xml.StartElement); ok {
					var x int
					for _, a := range te.Attr {
						if a.Name.Local == "x" {
							fmt.Sscan(a.Value, &x)
						}
					}
					if err := dec.DecodeElement(&label, &te); err != nil {
						t.Fatal(err)
					}
					checked++
					if end := x + 7*len([]rune(label)); end > width {
						t.Errorf("legend %q ends at %d, beyond %d", label, end, width)
					}
				}
			}
		}
	}
	if checked != len(r.Rows) {
		t.Errorf("%d legend labels found, want %d", checked, len(r.Rows))
	}
	if len(lines) < 2 {
		t.Errorf("legend on %d line(s), want it wrapped", len(lines))
	}
	if !strings.Contains(short.String(), `height="`+fmt.Sprint(top+3*(panelH+gapH))+`"`) ||
		svgH != fmt.Sprint(top+(len(lines)-1)*legendLineH+3*(panelH+gapH)) {
		t.Errorf("height %s with %d legend lines", svgH, len(lines))
	}
}
