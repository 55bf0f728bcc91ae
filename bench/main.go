package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/flashgate/flashgate/internal/auth"
)

// Options carries what Run takes from outside its flags.
type Options struct {
	Stdout io.Writer // the summary and --help; nil discards
	Stderr io.Writer // the live progress line, only when it is a terminal
	// Getenv reads the FLASHGATE_* defaults; nil means os.Getenv.
	Getenv func(string) string
	// Orders reads seckill_order for the invariant check; nil means MySQL
	// at --mysql-dsn.
	Orders OrderSource
}

// Main runs `flashgate bench` with args (the flags, without the program and
// subcommand names). --help prints the usage and returns nil. A run that
// breaks an invariant writes its reports, then returns an error wrapping
// ErrInvariant.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, err := Run(ctx, args, Options{Stdout: stdout, Stderr: stderr})
	return err
}

// Run is Main with its dependencies open to replacement. It returns the
// report of a run that got as far as the drain, even with an error; nil
// for --help.
func Run(ctx context.Context, args []string, opts Options) (*Report, error) {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	cfg, err := parseConfig(args, opts.Getenv, opts.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if opts.Orders == nil {
		opts.Orders = MySQLOrders{DSN: cfg.MySQLDSN}
	}
	if cfg.ServeBare != "" {
		return nil, serveBare(ctx, cfg.ServeBare, opts.Stdout)
	}
	progress := terminal(opts.Stderr)
	api := newAPIClient(&cfg)
	signer := auth.NewSigner([]byte(cfg.AuthSecret))

	p, err := setup(ctx, &cfg, api, signer, progress)
	if err != nil {
		return nil, err
	}
	if cfg.SetupOnly {
		return nil, writeSetup(&cfg, p, opts.Stdout)
	}
	var ceiling *loadResult
	if cfg.Calibrate {
		if ceiling, err = calibrate(ctx, &cfg, p, progress); err != nil {
			return nil, err
		}
	}

	var meters *cpuMeters
	if cfg.CPU {
		meters = startCPUMeters(ctx, &cfg)
	}
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return nil, err
	}
	startedAt := time.Now()
	res, err := runLoad(ctx, loadSpec{
		base:        cfg.Target,
		items:       p.items,
		rate:        cfg.Rate,
		concurrency: cfg.Concurrency,
		connections: cfg.Connections,
		duration:    cfg.Duration,
		warmup:      cfg.Warmup,
		timeout:     cfg.Timeout,
		picker:      p.picker,
		keepOrders:  true,
		progress:    progress,
		label:       "[" + cfg.Scenario + "]",
	})
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	r := newReport(&cfg, p, res, startedAt)
	if ceiling != nil {
		r.setCalibration(ceiling)
	}

	afterDrain := func() {}
	if meters != nil {
		afterDrain = func() { meters.stop(ctx) }
	}
	err = r.check(ctx, &cfg, p, res, api, opts.Orders, afterDrain)
	if meters != nil {
		// The orders this run persisted: the pre-sale's were counted
		// before the first reading.
		orders := int64(0)
		if err == nil {
			orders = r.Invariants.Orders - int64(len(p.presale))
		}
		r.CPU = meters.finish(ctx, orders)
	}
	r.Verdicts = verdicts(r)
	if err != nil {
		// The load's numbers are still worth keeping.
		r.Error = err.Error()
		if werr := r.writeFiles(&cfg); werr != nil {
			return r, errors.Join(err, werr)
		}
		r.writeSummary(opts.Stdout)
		return r, err
	}
	if err := r.writeFiles(&cfg); err != nil {
		return r, err
	}
	r.writeSummary(opts.Stdout)
	if !r.Passed {
		var problems []string
		problems = append(problems, r.Invariants.Broken...)
		for _, c := range r.Checks {
			if c.Result == "fail" {
				problems = append(problems, c.Name+": "+c.Detail)
			}
		}
		return r, fmt.Errorf("%w: %s", ErrInvariant, strings.Join(problems, "; "))
	}
	return r, nil
}

// check waits for the drain, calls drained (the CPU meters' second
// reading), then checks the invariants and the scenario's promises into r.
func (r *Report) check(ctx context.Context, cfg *params, p *plan, res *loadResult, api *apiClient, src OrderSource, drained func()) error {
	dr, err := drain(ctx, api, p.checked, cfg.DrainTimeout, cfg.DrainInterval)
	if err != nil {
		return err
	}
	drained()
	r.DrainS, r.DrainComplete, r.Stats = round3(dr.waited.Seconds()), dr.complete, dr.stats

	var orders []Order
	if cfg.Verify {
		if orders, err = src.Orders(ctx, p.checked); err != nil {
			return fmt.Errorf("verify (--verify=false skips it): %w", err)
		}
	}
	accepted := append(append([]Acceptance(nil), p.presale...), res.accepted...)
	r.Invariants = CheckInvariants(dr.stats, accepted, orders)
	r.Checks = scenarioChecks(cfg, p, res, &r.Invariants, dr.complete)
	r.Passed = r.Invariants.OK()
	for _, c := range r.Checks {
		r.Passed = r.Passed && c.Result != "fail"
	}
	return nil
}

// writeFiles writes the reports asked for.
func (r *Report) writeFiles(cfg *params) error {
	if cfg.Report != "" {
		if err := r.writeJSON(cfg.Report); err != nil {
			return err
		}
	}
	if cfg.Markdown != "" {
		if err := writeFile(cfg.Markdown, r.markdown()); err != nil {
			return err
		}
	}
	if cfg.HTML != "" {
		b, err := r.html()
		if err != nil {
			return err
		}
		if err := writeFile(cfg.HTML, b); err != nil {
			return err
		}
	}
	return nil
}

// scenarioChecks checks the promises particular to a scenario.
func scenarioChecks(cfg *params, p *plan, res *loadResult, inv *Invariants, drained bool) []Check {
	var checks []Check
	add := func(name string, ok bool, detail string) {
		result := "pass"
		if !ok {
			result = "fail"
		}
		checks = append(checks, Check{Name: name, Result: result, Detail: detail})
	}
	if drained {
		add("settled", true, fmt.Sprintf("reserved 0, orders steady after %s", cfg.DrainInterval))
	} else {
		add("settled", false, fmt.Sprintf("reserved %d or orders still changing after --drain-timeout %s", inv.Reserved, cfg.DrainTimeout))
	}
	var all [numCodes]int64 // warmup included
	for k := range res.kinds {
		for c, n := range res.kinds[k] {
			all[c] += n
		}
	}
	switch cfg.Scenario {
	case ScenarioFair:
		left := p.fair.unanswered()
		add("every user answered", left == 0, fmt.Sprintf("%d of %d users without a final answer when the run stopped", left, cfg.Users))
		add("every unit sold", inv.Orders == inv.Stock && inv.Remaining == 0 && inv.Reserved == 0,
			fmt.Sprintf("stock %d, orders %d, reserved %d, remaining %d; sold_out answered %d times", inv.Stock, inv.Orders, inv.Reserved, inv.Remaining, all[codeSoldOut]))
	case ScenarioSoldOut:
		var other int64
		for c, n := range all {
			if code(c) != codeSoldOut {
				other += n
			}
		}
		add("no sale after sold out", all[codeOK] == 0, fmt.Sprintf("%d buys accepted after the item sold out; %d answers other than sold_out", all[codeOK], other))
	case ScenarioBuy:
		add("no sold_out while stock covers every user", all[codeSoldOut] == 0, fmt.Sprintf("%d buys answered sold_out", all[codeSoldOut]))
	case ScenarioMixed:
		var bad int64
		var which []string
		for k := range res.kinds {
			if n := res.kinds[k][codeOK]; n > 0 && !kind(k).mayBuy() {
				bad += n
				which = append(which, fmt.Sprintf("%s %d", kind(k), n))
			}
		}
		detail := "no 202 for a bad token, an upcoming, ended or unknown item"
		if bad > 0 {
			detail = "accepted: " + strings.Join(which, ", ")
		}
		add("no sale off sale", bad == 0, detail)
	}
	return checks
}

// startCPUProfile starts a CPU profile of this process into path
// (--cpuprofile) and returns what stops it and closes the file; an empty
// path profiles nothing.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}

// terminal returns w when it is a terminal, for the live progress line,
// and nil otherwise: logs and pipes get only the summary.
func terminal(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}
