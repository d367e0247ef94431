// Command run replays the hostile requests of package attack against a
// running Canopy and prints what each made the process hold.
//
//	go run ./tools/attack/run -url http://127.0.0.1:9009 -pid $(pgrep -n canopy)
//
// tools/attack.sh starts Canopy in a memory cgroup and runs this.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"

	"github.com/canopy-observability/canopy/tools/attack"
)

func main() {
	var c attack.Config
	flag.StringVar(&c.URL, "url", "http://127.0.0.1:9009", "Canopy's HTTP base URL.")
	flag.IntVar(&c.PID, "pid", 0, "Canopy's process id, for its peak resident memory (0: not measured).")
	flag.StringVar(&c.Tenant, "tenant", "attacker", "Tenant the requests claim.")
	flag.Float64Var(&c.Scale, "scale", 1, "Multiplies every count, size and hold time of the attacks; 1 is the issue's figures.")
	only := flag.String("only", "", "Comma-separated attacks to run (default all): "+strings.Join(attack.Names(), ", ")+".")
	header := flag.Bool("header", true, "Print the table's header.")
	list := flag.Bool("list", false, "Print the attacks' names and exit.")
	flag.Parse()
	if *list {
		fmt.Println(strings.Join(attack.Names(), "\n"))
		return
	}
	if *only != "" {
		c.Only = strings.Split(*only, ",")
		for _, n := range c.Only {
			if !slices.Contains(attack.Names(), n) {
				fmt.Fprintf(os.Stderr, "attack: no attack %q; there are %s\n", n, strings.Join(attack.Names(), ", "))
				os.Exit(2)
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := attack.Run(ctx, c)
	if *header {
		fmt.Println("| attack | what | peak RSS | answers | alive after |")
		fmt.Println("|---|---|---|---|---|")
	}
	down := false
	for _, r := range results {
		rss := "–"
		if r.PeakRSS > 0 {
			rss = fmt.Sprintf("%.0f MiB", float64(r.PeakRSS)/(1<<20))
		}
		fmt.Printf("| %s | %s | %s | %s | %v |\n", r.Name, r.What, rss, r.StatusSummary(), r.Alive)
		down = down || !r.Alive
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "attack:", err)
		os.Exit(1)
	}
	if down {
		fmt.Fprintln(os.Stderr, "attack: the target stopped answering /ready")
		os.Exit(1)
	}
}
