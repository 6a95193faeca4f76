package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

// version is stamped by the release build (-ldflags -X).
var version = "dev"

// Main is the picoflow command line. Its fields are the process's outside
// world, so that tests can run commands in-process.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Exit forces an exit on a second interrupt; os.Exit when nil.
	Exit func(int)
	// Now is the clock the query commands measure ages and elapsed times
	// against (history, status, ui, gc); time.Now when nil. Tests fix it.
	Now func() time.Time
	// FollowPoll and FollowJournalPoll are how often logs --follow reads
	// the log file and looks in the journal for the end of the attempt;
	// 200ms and 1s when zero.
	FollowPoll, FollowJournalPoll time.Duration

	sigLog atomic.Pointer[slog.Logger] // set under --log-format json
	// onForced holds what a forced exit must stop before it kills the
	// tasks: the open journal's writes (see onForce).
	forceMu  sync.Mutex
	onForced []func()
	// forceUnsynced: a forced exit froze a journal without syncing it (a
	// write in progress did not finish within freezeWait).
	forceUnsynced atomic.Bool
	// forcing is set once a forced exit began; forceDone is closed when it
	// has killed the tasks and said so (just before it exits). The command
	// may return meanwhile (its frozen journal fails its writes): Run then
	// waits for forceDone and returns ExitForced, the exit's own code.
	forcing   atomic.Bool
	forceDone chan struct{}
	// cancelSig receives SIGUSR1: picoflow cancel asks a foreground run
	// to look at its request file (cancel.go).
	cancelSig chan os.Signal
}

// New returns a Main bound to the process. It marks the descriptors the
// process inherited close-on-exec, so that no task inherits them in turn
// (inherited.go).
func New() *Main {
	closeInheritedOnExec()
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Exit: os.Exit}
}

// command is one subcommand. setup declares its flags on fs and returns
// the function that runs it, which sees the parsed flag values.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	long    string
	setup   func(fs *pflag.FlagSet) runFunc
}

type runFunc func(ctx context.Context, m *Main, g *globals, args []string) error

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// now reads m.Now.
func (m *Main) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// globals are the flags every command accepts.
type globals struct {
	home      string
	config    string // global config file: --config, else env PICOFLOW_CONFIG
	cfg       *config.Config
	logFormat string
	json      bool
	fs        *pflag.FlagSet
	log       *slog.Logger
}

// Run runs the command line args (without the program name) and returns the
// process exit code. The first SIGINT or SIGTERM cancels ctx (graceful
// stop); a second SIGINT or SIGTERM forces exit code 130 (see watchSignals).
func (m *Main) Run(ctx context.Context, args []string) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	m.cancelSig = make(chan os.Signal, 1)
	signal.Notify(m.cancelSig, syscall.SIGUSR1)
	defer signal.Stop(m.cancelSig)
	finished := make(chan struct{})
	defer close(finished)
	m.forceDone = make(chan struct{})
	go m.watchSignals(cancel, sig, finished)
	err := m.run(ctx, args)
	if m.forcing.Load() {
		<-m.forceDone
		return ExitForced
	}
	if err == nil {
		return ExitOK
	}
	code := ExitInternal
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(m.Stderr, "picoflow: %v\n", ee.err)
		}
		code = ee.code
	} else {
		fmt.Fprintf(m.Stderr, "picoflow: %v\n", err)
	}
	if projector.IsCorrupt(err) { // met in a page that opening it did not read
		fmt.Fprintln(m.Stderr, "  the history database (HOME/picoflow.db) is damaged: picoflow reindex rebuilds it from the journals")
	}
	return code
}

func (m *Main) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		m.usage(m.Stderr)
		return exitf(ExitUsage, "no command given")
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		return m.help(args[1:])
	case "-v", "--version":
		name = "version"
	case "__complete": // called by the scripts of picoflow completion
		m.complete(ctx, args[1:])
		return nil
	}
	c := commands[name]
	if c == nil {
		return exitf(ExitUsage, "unknown command %q%s (see picoflow help)", name, suggestCommand(name, commandNames()))
	}
	g := &globals{}
	fs, run, help := c.flags(g)
	if err := fs.Parse(args[1:]); err != nil {
		return exitf(ExitUsage, "%s: %v (see picoflow %s --help)", c.name, err, c.name)
	}
	if *help {
		m.commandHelp(m.Stdout, c, fs)
		return nil
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return exitf(ExitUsage, "--log-format must be text or json, not %q", g.logFormat)
	}
	if g.config == "" {
		g.config = m.Getenv("PICOFLOW_CONFIG")
	}
	if g.home == "" {
		g.home = m.Getenv("PICOFLOW_HOME")
	}
	if g.home == "" {
		g.home = defaultHome(m.Getenv)
	}
	g.log = m.logger(g.logFormat)
	if err := m.loadConfig(c.name, g); err != nil {
		return err
	}
	// Paths under the home go into the journal (each attempt's log):
	// relative ones would name other files for a command run in another
	// directory (TestRelativeHome).
	if abs, err := filepath.Abs(g.home); err == nil {
		g.home = abs
	}
	if writesHome[c.name] {
		if err := home(g.home).checkWritable(); err != nil {
			return err
		}
	}
	if g.logFormat == "json" { // --log-format, or log.format in the config
		m.setSignalLog(g.log)
	}
	return run(ctx, m, g, fs.Args())
}

// flags returns the flag set of c (the global flags, then the command's
// own), the function that runs c, and the value of --help. --help, the man
// page and the shell completions all read the flags from here.
func (c *command) flags(g *globals) (fs *pflag.FlagSet, run runFunc, help *bool) {
	fs = pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&g.home, "home", "", "state directory: journal, logs, database (env PICOFLOW_HOME)")
	fs.StringVar(&g.config, "config", "", "global config file (env PICOFLOW_CONFIG; default HOME/config.yaml, then /etc/picoflow/config.yaml)")
	fs.StringVar(&g.logFormat, "log-format", "text", "format of picoflow's own log on stderr: text or json")
	help = fs.BoolP("help", "h", false, "show help for this command")
	g.fs = fs
	return fs, c.setup(fs), help
}

func (m *Main) logger(format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(m.Stderr, opts))
	}
	opts.Level = slog.LevelWarn // on a terminal, progress lines carry the story
	return slog.New(slog.NewTextHandler(m.Stderr, opts))
}

// defaultHome is /var/lib/picoflow for root, else $XDG_STATE_HOME/picoflow
// (~/.local/state/picoflow).
func defaultHome(getenv func(string) string) string {
	if os.Geteuid() == 0 {
		return "/var/lib/picoflow"
	}
	if x := getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "picoflow")
	}
	h := getenv("HOME")
	if h == "" {
		h, _ = os.UserHomeDir()
	}
	return filepath.Join(h, ".local", "state", "picoflow")
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (m *Main) usage(w io.Writer) {
	fmt.Fprintln(w, "picoflow — DAG workflows for small Linux machines")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: picoflow COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, n := range commandNames() {
		c := commands[n]
		fmt.Fprintf(w, "  %-10s %s\n", n, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command accepts --home DIR (env PICOFLOW_HOME) and --help.")
	fmt.Fprintln(w, "picoflow help exit-codes lists the exit codes; picoflow help --man prints the manual page.")
}

func (m *Main) help(args []string) error {
	if len(args) == 0 {
		m.usage(m.Stdout)
		return nil
	}
	switch args[0] {
	case "exit-codes":
		printExitCodes(m.Stdout)
		return nil
	case "--man":
		return writeMan(m.Stdout)
	}
	c := commands[args[0]]
	if c == nil {
		return exitf(ExitUsage, "no help for %q%s", args[0], suggestCommand(args[0], append(commandNames(), "exit-codes")))
	}
	return m.run(context.Background(), []string{c.name, "--help"})
}

func (m *Main) commandHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: picoflow %s [flags] %s\n\n%s\n", c.name, c.args, c.summary)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.long))
	}
	own, global := flagLines(fs)
	if len(own) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", strings.Join(own, ""))
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s", strings.Join(global, ""))
}

// globalFlags are the flags Main.run declares for every command.
var globalFlags = map[string]bool{"home": true, "config": true, "log-format": true, "help": true}

// flagLines renders the command's own flags, then the global ones, one
// aligned line each: a bool flag as --flag (never --flag[=true|false]),
// others with their value type and non-zero default.
func flagLines(fs *pflag.FlagSet) (own, global []string) {
	type line struct{ left, usage string }
	var lines []line
	var isGlobal []bool
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		varname, usage := pflag.UnquoteUsage(f)
		if f.Value.Type() != "bool" && varname != "" {
			left += " " + varname
		}
		if f.Value.Type() != "bool" && f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
			def := f.DefValue
			if f.Value.Type() == "string" {
				def = strconv.Quote(def)
			}
			usage += " (default " + def + ")"
		}
		lines = append(lines, line{left, usage})
		isGlobal = append(isGlobal, globalFlags[f.Name])
		width = max(width, len(left))
	})
	for i, l := range lines {
		s := fmt.Sprintf("%-*s   %s\n", width, l.left, l.usage)
		if isGlobal[i] {
			global = append(global, s)
		} else {
			own = append(own, s)
		}
	}
	return own, global
}

// suggestCommand is suggest for a command name: the one command got is a
// prefix of ("hist" for history), else a command within one edit per four
// letters of got (so "bogus" suggests nothing rather than "logs").
func suggestCommand(got string, names []string) string {
	var pre []string
	for _, n := range names {
		if len(got) >= 2 && strings.HasPrefix(n, got) {
			pre = append(pre, n)
		}
	}
	if len(pre) == 1 {
		return fmt.Sprintf(" (did you mean %q?)", pre[0])
	}
	best := yamlcheck.Suggest(got, names)
	if best == "" || yamlcheck.EditDistance(got, best) > max(1, len(got)/4) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// suggest returns ` (did you mean "x"?)` for the closest name, or "".
func suggest(got string, names []string) string {
	best := yamlcheck.Suggest(got, names)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
