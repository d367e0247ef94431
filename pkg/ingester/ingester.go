// Package ingester is the process part that holds recent data of every
// signal: it hosts one unit per signal (-ingester.signals), each with its
// own ring, per-tenant stores, WAL, flush and shipping (see Unit), lays out
// their directories under <data-dir>/ingester/<signal>/, and serves what is
// common to them: readiness, POST /ingester/flush and the units' lifecycle.
package ingester

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/services"
)

// Unit is one signal an ingester hosts. A unit is a service: starting
// replays its stored data (WAL) and then joins the unit's ring, so an
// ACTIVE instance always has its data; stopping leaves the ring (flushing
// first when so configured) and closes its stores. A unit keeps its data
// under the directory it was given, which exists once the ingester starts
// it. Every method is safe for concurrent use.
type Unit interface {
	services.Service
	// Signal is the unit's name in -ingester.signals and its directory.
	Signal() string
	// CheckReady reports why the unit is not ACTIVE in its ring, or nil.
	CheckReady(ctx context.Context) error
	// FlushAndShip cuts every tenant's in-memory data into the unit's
	// stored objects and uploads everything not yet in the bucket. It
	// returns the tenants and the objects shipped, and one error per
	// tenant whose data stays on local disk (errors.Join).
	FlushAndShip(ctx context.Context) (tenants, shipped int, err error)
	// RingStatus serves the unit's page of its ring instance.
	RingStatus() http.Handler
}

// Ingester hosts the units. It is a services.Service: it lays out the data
// directory, starts the units in order and fails when one of them fails.
type Ingester struct {
	services.Service

	dir     string
	units   []Unit
	logger  log.Logger
	watcher *services.FailureWatcher
}

// New returns an ingester keeping its units' data under dir
// (<data-dir>/ingester). Each unit must have been given dir/<signal> as
// its directory (Dir).
func New(dir string, units []Unit, logger log.Logger) *Ingester {
	i := &Ingester{dir: dir, units: units, logger: log.With(logger, "component", "ingester"), watcher: services.NewFailureWatcher()}
	i.Service = services.NewBasicService(i.starting, i.running, i.stopping)
	return i
}

// Dir is the directory of signal's unit under the ingester directory.
func Dir(ingesterDir, signal string) string { return filepath.Join(ingesterDir, signal) }

// TokensFile is where signal's unit keeps its ring tokens.
func TokensFile(ingesterDir, signal string) string {
	return filepath.Join(ingesterDir, signal+".tokens")
}

// Units lists the hosted units in start order.
func (i *Ingester) Units() []Unit { return i.units }

func (i *Ingester) starting(ctx context.Context) error {
	if err := migrateLayout(i.dir, i.logger); err != nil {
		return fmt.Errorf("ingester data directory %s: %w", i.dir, err)
	}
	for _, u := range i.units {
		i.watcher.WatchService(u)
		if err := services.StartAndAwaitRunning(ctx, u); err != nil {
			return fmt.Errorf("starting the %s ingester: %w", u.Signal(), err)
		}
	}
	return nil
}

func (i *Ingester) running(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-i.watcher.Chan():
		return err
	}
}

// stopping stops the units in reverse order; each leaves its ring and
// closes its stores.
func (i *Ingester) stopping(_ error) error {
	var errs []error
	for n := len(i.units) - 1; n >= 0; n-- {
		u := i.units[n]
		if err := services.StopAndAwaitTerminated(context.Background(), u); err != nil {
			errs = append(errs, fmt.Errorf("stopping the %s ingester: %w", u.Signal(), err))
		}
	}
	return errors.Join(errs...)
}

// CheckReady reports whether every unit is running and ACTIVE in its ring.
func (i *Ingester) CheckReady(ctx context.Context) error {
	if s := i.State(); s != services.Running {
		return fmt.Errorf("ingester is %s", s)
	}
	for _, u := range i.units {
		if err := u.CheckReady(ctx); err != nil {
			return fmt.Errorf("%s ingester: %w", u.Signal(), err)
		}
	}
	return nil
}
