// Command chart draws the chart of BENCHMARKS.md from the runner's
// results.json: for every workload, one bar per server, in three panels:
// requests per second, p99 latency, and server CPU time per request. It
// writes SVG and uses only the standard library.
//
//	chart -in bench/compare/results/results.json -out bench/compare/results/chart.svg
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// The subset of the runner's results.json the chart reads.
type results struct {
	Date    string `json:"date"`
	Machine struct {
		NProc   int    `json:"nproc"`
		CPU     string `json:"cpu"`
		Pinning string `json:"pinning"`
	} `json:"machine"`
	Rows []struct {
		ID    string `json:"id"`
		Label string `json:"label"`
		Error string `json:"error"`
	} `json:"rows"`
	Workloads []struct {
		ID    string `json:"id"`
		Label string `json:"label"`
		Short string `json:"short"`
	} `json:"workloads"`
	Cells []struct {
		Row      string `json:"row"`
		Workload string `json:"workload"`
		Median   struct {
			Runs           int     `json:"runs"`
			RPS            float64 `json:"rps"`
			P99us          float64 `json:"p99_us"`
			ServerUsPerReq float64 `json:"server_cpu_us_per_req"`
		} `json:"median"`
	} `json:"cells"`
}

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"}

func main() {
	in := flag.String("in", "results.json", "the runner's results `file`")
	out := flag.String("out", "chart.svg", "SVG `file` to write")
	flag.Parse()
	b, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chart: %v\n", err)
		os.Exit(1)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		fmt.Fprintf(os.Stderr, "chart: %s: %v\n", *in, err)
		os.Exit(1)
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chart: %v\n", err)
		os.Exit(1)
	}
	draw(f, &r)
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "chart: %v\n", err)
		os.Exit(1)
	}
}

// panel is one figure per (workload, row).
type panel struct {
	title string
	unit  string
	value func(c cellMedian) float64
}

type cellMedian = struct {
	Runs           int     `json:"runs"`
	RPS            float64 `json:"rps"`
	P99us          float64 `json:"p99_us"`
	ServerUsPerReq float64 `json:"server_cpu_us_per_req"`
}

const (
	width   = 1040
	marginL = 60
	colGap  = 30
	panelH  = 220
	top     = 90 // the first panel, below a one-line legend
	gapH    = 70

	legendLineH = 18
)

// draw lays the chart out as small multiples: one column per workload, one
// line per figure, each panel on its own scale (the workloads differ by
// orders of magnitude).
func draw(w io.Writer, r *results) {
	panels := []panel{
		{"Throughput, requests/s (higher is better)", "req/s", func(c cellMedian) float64 { return c.RPS }},
		{"p99 latency, µs (lower is better)", "µs", func(c cellMedian) float64 { return c.P99us }},
		{"Server CPU time per request, µs, all server processes (lower is better)", "µs CPU/req", func(c cellMedian) float64 { return c.ServerUsPerReq }},
	}
	var rows []int
	for i, row := range r.Rows {
		if row.Error == "" {
			rows = append(rows, i)
		}
	}
	// The legend wraps onto more lines when the labels do not fit on one;
	// the panels move down by as much.
	type entry struct{ x, y int }
	legend := make([]entry, len(rows))
	x, y := marginL, 52
	for k, i := range rows {
		wide := 28 + 7*len([]rune(r.Rows[i].Label))
		if x > marginL && x+wide-12 > width-10 {
			x, y = marginL, y+legendLineH
		}
		legend[k] = entry{x, y}
		x += wide
	}
	top := top + y - 52
	height := top + len(panels)*(panelH+gapH)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="22" font-size="16" font-weight="bold">Subordinate and its peers: echo after a line preamble, median of runs</text>`+"\n", marginL)
	fmt.Fprintf(w, `<text x="%d" y="40" fill="#555">%d CPUs, %s; %s; %s</text>`+"\n", marginL, r.Machine.NProc,
		html.EscapeString(r.Machine.CPU), html.EscapeString(r.Machine.Pinning), html.EscapeString(r.Date))
	for k, i := range rows {
		e := legend[k]
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			e.x, e.y, palette[k%len(palette)], e.x+16, e.y+10, html.EscapeString(r.Rows[i].Label))
	}
	nw := len(r.Workloads)
	if nw == 0 {
		fmt.Fprintln(w, "</svg>")
		return
	}
	colW := (width - marginL - 10 - (nw-1)*colGap) / nw
	for p, pn := range panels {
		y0 := top + p*(panelH+gapH)
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", 10, y0+8, html.EscapeString(pn.title))
		for g := range r.Workloads {
			x0 := marginL + g*(colW+colGap)
			drawPanel(w, r, rows, pn, g, x0, y0+30, colW, panelH-50)
		}
	}
	fmt.Fprintln(w, "</svg>")
}

// drawPanel draws one figure of one workload, one bar per row, in the box
// at (x0, y0) of size pw x ph.
func drawPanel(w io.Writer, r *results, rows []int, pn panel, g, x0, y0, pw, ph int) {
	wl := r.Workloads[g]
	vals := map[string]float64{}
	maxV := 0.0
	for _, c := range r.Cells {
		if c.Workload != wl.ID || c.Median.Runs == 0 {
			continue
		}
		v := pn.value(c.Median)
		vals[c.Row] = v
		maxV = math.Max(maxV, v)
	}
	scale, step := niceScale(maxV)
	base := y0 + ph
	for t := 0.0; t <= scale+step/2; t += step {
		y := base - int(t/scale*float64(ph))
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/><text x="%d" y="%d" text-anchor="end" font-size="10" fill="#555">%s</text>`+"\n",
			x0, y, x0+pw, y, x0-4, y+3, human(t))
	}
	barW := float64(pw-8) / float64(max(len(rows), 1))
	for k, i := range rows {
		v, ok := vals[r.Rows[i].ID]
		if !ok {
			continue
		}
		h := v / scale * float64(ph)
		bx := float64(x0+4) + float64(k)*barW
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s %s</title></rect>`+"\n",
			bx, float64(base)-h, barW-3, h, palette[k%len(palette)],
			html.EscapeString(r.Rows[i].Label), html.EscapeString(wl.Label), human(v), html.EscapeString(pn.unit))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>`+"\n",
			bx+(barW-3)/2, float64(base)-h-3, human(v))
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x0, base, x0+pw, base)
	title := wl.Short
	if title == "" {
		title = wl.Label
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x0+pw/2, base+16, html.EscapeString(title))
}

// niceScale returns an axis maximum >= max and a tick step, both 1, 2 or 5
// times a power of ten.
func niceScale(max float64) (float64, float64) {
	if max <= 0 {
		return 1, 0.25
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Ceil(max/step) * step, step
}

// human formats a figure compactly: 12.3k, 4.56M, 7.8.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return trim(fmt.Sprintf("%.2f", v/1e6)) + "M"
	case v >= 1e4:
		return trim(fmt.Sprintf("%.0f", v/1e3)) + "k"
	case v >= 1e3:
		return trim(fmt.Sprintf("%.1f", v/1e3)) + "k"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return trim(fmt.Sprintf("%.1f", v))
	default:
		return trim(fmt.Sprintf("%.2f", v))
	}
}

func trim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
