package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/subordinate/subordinate/server"
)

func init() {
	register("status", command{summary: "print a running server's status (from its --admin endpoint)", run: runStatus})
}

// statusTimeout bounds the request to the admin endpoint.
const statusTimeout = 10 * time.Second

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "", "HOST:PORT of the server's admin endpoint (serve --admin)")
	asJSON := fs.Bool("json", false, "print the status as the endpoint's JSON")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage: subordinate status --admin HOST:PORT [--json]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Prints the master and its workers, as GET /status on the admin endpoint")
		fmt.Fprintln(w, "answers them. Exits 0 if every worker runs, 1 otherwise (or unreachable).")
		fmt.Fprintln(w)
		fs.PrintDefaults()
	}
	if code, done := parseFlags("status", fs, args, stdout, stderr); done {
		return code
	}
	if *admin == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	body, err := fetchStatus(*admin)
	if err != nil {
		fmt.Fprintf(stderr, "subordinate status: %v\n", err)
		return 1
	}
	var st server.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "subordinate status: %s/status: %v\n", *admin, err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(body)
	} else {
		printStatus(stdout, &st)
	}
	if !st.Healthy {
		return 1
	}
	return 0
}

// fetchStatus returns the body of GET /status at the admin address.
func fetchStatus(admin string) ([]byte, error) {
	url := "http://" + admin + "/status"
	if strings.Contains(admin, "://") {
		url = strings.TrimSuffix(admin, "/") + "/status"
	}
	c := &http.Client{Timeout: statusTimeout}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// printStatus prints st as a header and a table of the workers.
func printStatus(w io.Writer, st *server.Status) {
	version := st.Version
	if st.Revision != "" {
		version += " (" + st.Revision + ")"
	}
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(w, "master   pid %d, %s, up %s\n", st.Pid, st.State, seconds(st.Uptime))
	fmt.Fprintf(w, "version  %s, %s\n", version, st.GoVersion)
	fmt.Fprintf(w, "listen   %s\n", strings.Join(st.Listen, " "))
	fmt.Fprintf(w, "ready    %s   healthy %s\n", yes[st.Ready], yes[st.Healthy])
	if c := st.Cluster; c != nil {
		fmt.Fprintf(w, "cluster  node %d of %d (0 to %d)\n", c.Node, c.Nodes, c.Nodes-1)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "SHARD\tPID\tSTATE\tRESTARTS\tCONNS\tUPTIME"
	if st.Cluster != nil {
		header += "\tNODE LINKS"
	}
	fmt.Fprintln(tw, header)
	for _, wk := range st.Workers {
		pid, conns, up := "-", "-", "-"
		if wk.Pid != 0 {
			pid, up = strconv.Itoa(wk.Pid), seconds(wk.Uptime)
		}
		if wk.Connections != nil {
			conns = strconv.Itoa(*wk.Connections)
		} else if wk.Pid != 0 {
			conns = "?" // it did not answer in time
		}
		line := fmt.Sprintf("%d\t%s\t%s\t%d\t%s\t%s", wk.Shard, pid, wk.State, wk.Restarts, conns, up)
		if c := st.Cluster; c != nil {
			links := "-"
			if wk.NodeLinks != nil {
				links = fmt.Sprintf("%d/%d up", *wk.NodeLinks, c.Nodes-1)
			}
			line += "\t" + links
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// seconds renders a duration in seconds, rounded for a person.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
