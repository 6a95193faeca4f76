package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// writeMan writes the manual page picoflow(1) in roff, generated from the
// command registry, each command's flag set and the exit-code table — the
// same definitions --help prints, so the two cannot drift apart.
func writeMan(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, ".TH PICOFLOW 1 \"\" \"picoflow %s\" \"User Commands\"\n.ad l\n", roff(version))
	fmt.Fprintln(w, ".SH NAME")
	fmt.Fprintln(w, `picoflow \- DAG workflows for small Linux machines`)
	fmt.Fprintln(w, ".SH SYNOPSIS")
	fmt.Fprintln(w, `.B picoflow
.I COMMAND
[\fIflags\fR] [\fIargs\fR]`)
	fmt.Fprintln(w, ".SH DESCRIPTION")
	fmt.Fprintln(w, `PicoFlow runs workflows \- tasks with dependencies, written in YAML \- on
small Linux machines. Every run is recorded in a write-ahead journal under
the home directory, so a run interrupted by a crash or power loss resumes
where it stopped. \fBpicoflow schema\fR prints the JSON Schema of workflow
files for editors.`)

	fmt.Fprintln(w, ".SH GLOBAL OPTIONS")
	fmt.Fprintln(w, "Every command accepts these flags.")
	fs, _, _ := (&command{setup: func(*pflag.FlagSet) runFunc { return nil }}).flags(&globals{})
	fs.VisitAll(func(f *pflag.Flag) {
		if globalFlags[f.Name] {
			manFlag(w, f)
		}
	})

	fmt.Fprintln(w, ".SH COMMANDS")
	for _, n := range commandNames() {
		manCommand(w, n, commands[n])
	}

	fmt.Fprintln(w, ".SH EXIT STATUS")
	for _, e := range exitTable {
		fmt.Fprintf(w, ".TP\n.B %d\n", e.code)
		manText(w, e.name+": "+e.meaning+".")
		if e.hint != "" {
			manText(w, "Hint: "+e.hint+".")
		}
	}
	fmt.Fprintln(w, `.SH ENVIRONMENT
.TP
.B PICOFLOW_HOME
The home directory, as \fB\-\-home\fR.
.TP
.B PICOFLOW_CONFIG
The global config file, as \fB\-\-config\fR.
.TP
.B TMPDIR
Where task temporary files go; PicoFlow itself writes only under its home.
.SH FILES
.TP
.I /etc/picoflow/config.yaml
The global config file.
.TP
.I /etc/picoflow/workflows/
The workflows the daemon schedules.
.TP
.I /var/lib/picoflow/
The home of root and of the picoflow service: journal, logs, database.
.SH SEE ALSO
.BR systemctl (1),
.BR crontab (5)`)
	return w.Flush()
}

// manCommand writes one command's section: synopsis, summary, long help
// and its own (not global, not hidden) flags.
func manCommand(w io.Writer, n string, c *command) {
	fmt.Fprintf(w, ".SS \"picoflow %s\"\n", roff(n))
	fmt.Fprintf(w, ".B picoflow %s\n", roff(n))
	if c.args != "" {
		fmt.Fprintf(w, "[\\fIflags\\fR] \\fI%s\\fR\n", roff(c.args))
	} else {
		fmt.Fprintln(w, `[\fIflags\fR]`)
	}
	fmt.Fprintln(w, ".PP")
	manText(w, c.summary+".")
	if c.long != "" {
		fmt.Fprintln(w, ".PP")
		manText(w, strings.TrimSpace(c.long))
	}
	fs, _, _ := c.flags(&globals{})
	fs.VisitAll(func(f *pflag.Flag) {
		if !globalFlags[f.Name] && !f.Hidden {
			manFlag(w, f)
		}
	})
}

// manFlag writes one flag as a tagged paragraph: "-f, --follow TYPE".
func manFlag(w io.Writer, f *pflag.Flag) {
	name := `\fB\-\-` + roff(f.Name) + `\fR`
	if f.Shorthand != "" {
		name = `\fB\-` + roff(f.Shorthand) + `\fR, ` + name
	}
	if t := f.Value.Type(); t != "bool" {
		name += ` \fI` + roff(strings.ToUpper(strings.TrimSuffix(t, "Array"))) + `\fR`
	}
	fmt.Fprintf(w, ".TP\n%s\n", name)
	usage := f.Usage
	if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" && f.DefValue != "0s" {
		usage += " (default " + f.DefValue + ")"
	}
	manText(w, usage)
}

// manText writes running text, one roff line per input line, escaped.
func manText(w io.Writer, s string) {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			fmt.Fprintln(w, ".PP")
			continue
		}
		fmt.Fprintln(w, roff(line))
	}
}

// roff escapes text for roff: backslashes, hyphens (as \-, so that flags
// copy and paste), and a leading control character.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
