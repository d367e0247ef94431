// Command canopy is the Canopy server: one binary for every component.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/go-kit/log/level"
	dslog "github.com/grafana/dskit/log"

	"github.com/canopy-observability/canopy/pkg/canopy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, out io.Writer) int {
	fs := flag.NewFlagSet("canopy", flag.ContinueOnError)
	fs.SetOutput(out)
	var cfg canopy.Config
	if err := canopy.Load(&cfg, fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(out, err)
		return 2
	}
	logger := dslog.NewGoKitWithLevel(cfg.Server.LogLevel, cfg.Server.LogFormat)
	canopy.SetGCPercent(cfg.GCPercent)
	if _, err := canopy.SetMemoryLimit(cfg.MemoryLimitRatio, logger); err != nil {
		level.Error(logger).Log("msg", "invalid configuration", "err", err)
		return 1
	}
	c, err := canopy.New(cfg, logger)
	if err != nil {
		level.Error(logger).Log("msg", "invalid configuration", "err", err)
		return 1
	}
	if err := c.Run(); err != nil && !errors.Is(err, canopy.ErrSignal) {
		level.Error(logger).Log("msg", "Canopy stopped with an error", "err", err)
		return 1
	}
	return 0
}
