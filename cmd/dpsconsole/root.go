package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"charm.land/fang/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses, one rule for every command (exitStatusHelp says it).
const (
	exitOK      = 0
	exitInvalid = 1 // some input data was invalid, or DPS refused or failed a request
	exitUsage   = 2 // the command line itself was wrong; nothing was done
)

// exitStatusHelp ends the --help of every command.
const exitStatusHelp = `Exit status: 0 ok; 1 some input data invalid or refused (a bad line of a
file, a request DPS refused), every other line or item still done; 2 a
command-line mistake (an unknown or bad flag, an empty flag value, an invalid
ID argument, a file that cannot be read), nothing done.`

// version is set at link time (-ldflags "-X main.version=...").
var version = ""

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// app is what every command shares: standard streams and the global flags.
type app struct {
	stdio
	stateDir         string
	connectionString string
	caFile           string
	azure            azureFlags
	console          consoleFlags
}

// usageError marks a mistake on the command line (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef reports a command-line mistake.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentExit carries an exit status whose cause was already reported.
type silentExit struct{ code int }

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(ctx context.Context, args []string, io stdio) int {
	a := &app{stdio: io}
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	opts := []fang.Option{fang.WithNotifySignal(os.Interrupt), fang.WithErrorHandler(errorHandler)}
	if version != "" {
		opts = append(opts, fang.WithVersion(version))
	}
	err := fang.Execute(ctx, root, opts...)
	return exitCode(err)
}

func errorHandler(w io.Writer, styles fang.Styles, err error) {
	var s silentExit
	if errors.As(err, &s) {
		return
	}
	// fang title-cases the first word, which would print "DPS" as "Dps";
	// upper-case only the first letter instead.
	styles.ErrorText = styles.ErrorText.UnsetTransform()
	fang.DefaultErrorHandler(w, styles, sentence{err})
}

// sentence prints an error with its first letter upper-cased, and with any
// control character escaped: errors quote their input (%q), and this catches
// what cobra and pflag echo raw ("unknown flag: --\x1b[2J").
type sentence struct{ error }

func (s sentence) Error() string {
	msg := escapeControls(s.error.Error())
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:]
}

// escapeControls writes every control character of s but newline and tab as
// a Go escape (\x1b), so text from input cannot drive the terminal.
func escapeControls(s string) string { return controlEscaper.Replace(s) }

var controlEscaper = func() *strings.Replacer {
	var pairs []string
	for r := rune(0); r < 0xa0; r++ { // C0, DEL and C1
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			q := strconv.QuoteRune(r)
			pairs = append(pairs, string(r), q[1:len(q)-1])
		}
	}
	return strings.NewReplacer(pairs...)
}()

func exitCode(err error) int {
	var s silentExit
	var u usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &s):
		return s.code
	case errors.As(err, &u), isCobraUsageError(err):
		return exitUsage
	default:
		return exitInvalid
	}
}

// isCobraUsageError recognises the errors cobra makes itself for unknown
// commands and bad arguments (it has no error types for them).
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "flag needs an argument", "invalid argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "dpsconsole",
		Short: "A terminal console for Azure IoT Hub Device Provisioning Service",
		Long: `dpsconsole browses enrollment groups and registration records, derives device
keys for symmetric-key enrollment groups, runs a simulated device registration
and shows it live, and cleans up orphaned registration records.

With no connection string it runs against its own built-in DPS + IoT Hub
emulator, so everything works on a laptop with no Azure account. After
az login, --dps NAME reaches a DPS in Azure with your own identity
(dpsconsole targets list shows them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConsole(cmd, a) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{flagValueError(err)} })
	addConsoleFlags(root, a)
	pf := root.PersistentFlags()
	pf.StringVar(&a.stateDir, "state-dir", defaultStateDir(), "state directory: emulator data, journals, job logs, log file")
	pf.StringVar(&a.connectionString, "connection-string", "", "service connection string of a DPS (or $DPS_CONNECTION_STRING); without one the embedded emulator is used")
	pf.StringVar(&a.caFile, "ca-file", "", "extra CA to trust, a PEM file (or $DPS_CA_FILE), e.g. a standalone emulator's ca.pem")
	addAzureFlags(pf, &a.azure)
	root.AddCommand(
		newKeysCmd(a),
		newEmulatorCmd(a),
		newGroupsCmd(a),
		newEnrollmentsCmd(a),
		newRegistrationsCmd(a),
		newQuotaCmd(a),
		newRegisterCmd(a),
		newCleanupCmd(a),
		newHubCmd(a),
		newFleetCmd(a),
		newTargetsCmd(a),
	)
	withUsageLine(root)
	withExitRule(root)
	return root
}

// emptyOK marks a flag whose empty value means something (--policy "" signs
// without skn), so withExitRule lets it through.
const emptyOK = "dpsconsole-empty-ok"

// allowEmpty marks flags of fs whose empty value is meaningful.
func allowEmpty(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, emptyOK, nil); err != nil {
			panic(err) // a misspelt flag name: a bug
		}
	}
}

// withExitRule gives every command the same rule for flags and exit status:
// each refuses a text flag given an empty value (or an empty item of a
// list), since --resume "" is a mistake, never "no job", and --state-dir ""
// never means the current directory; and each --help ends with the rule.
func withExitRule(c *cobra.Command) {
	if c.Runnable() {
		own := c.PreRunE // kept, so a command may still have its own
		c.PreRunE = func(cmd *cobra.Command, args []string) error {
			if err := checkEmptyFlags(cmd.Flags()); err != nil || own == nil {
				return err
			}
			return own(cmd, args)
		}
		if c.Long == "" {
			c.Long = c.Short + "."
		}
		c.Long += "\n\n" + exitStatusHelp
	}
	for _, sub := range c.Commands() {
		withExitRule(sub)
	}
}

func checkEmptyFlags(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if _, ok := f.Annotations[emptyOK]; ok || err != nil {
			return
		}
		var items []string
		if v, ok := f.Value.(pflag.SliceValue); ok {
			items = v.GetSlice()
		} else if f.Value.Type() == "string" {
			items = []string{f.Value.String()}
		} else {
			return
		}
		if len(items) == 0 {
			items = []string{""} // --iot-hubs "" is a list of none
		}
		for i, s := range items {
			if strings.TrimSpace(s) != "" {
				continue
			}
			where := ""
			if len(items) > 1 {
				where = fmt.Sprintf(" in item %d of %d", i+1, len(items))
			}
			err = usagef("flag --%s is empty%s: leave it out, or give a value (%s)", f.Name, where, f.Usage)
			return
		}
	})
	return err
}

// withUsageLine adds the usage line to cobra's argument errors, which say
// only "accepts 1 arg(s), received 0", not which argument is missing.
func withUsageLine(c *cobra.Command) {
	if !c.Runnable() && c.HasSubCommands() {
		// A group such as "groups" would print its help and exit 0 for a
		// mistyped subcommand ("groups lst"); make that an unknown command.
		c.Args = cobra.NoArgs
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				if errors.As(err, new(usageError)) {
					return err // already says what is wrong, e.g. an invalid ID
				}
				if cmd.HasAvailableSubCommands() {
					return usageError{fmt.Errorf("%w; see %q for the commands", err, cmd.CommandPath()+" --help")}
				}
				return usageError{fmt.Errorf("%w; usage: %s", err, cmd.UseLine())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		withUsageLine(sub)
	}
}

// flagValueError says what a flag takes instead of pflag's strconv detail
// ("strconv.ParseInt: parsing "abc": invalid syntax").
func flagValueError(err error) error {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return err
	}
	if iv.GetFlag().Value.Type() == "duration" && durationSyntax.MatchString(iv.GetValue()) {
		// It parses but overflows: time.ParseDuration says "invalid" for both.
		return fmt.Errorf("invalid value %q for --%s: too long, at most %s (about 292 years)", iv.GetValue(), iv.GetFlag().Name, maxDuration)
	}
	want := map[string]string{
		"bool":     "true or false",
		"int":      "a whole number",
		"int32":    "a whole number",
		"float64":  "a number, e.g. 0.05",
		"duration": "a duration, e.g. 90s or 1h",
	}[iv.GetFlag().Value.Type()]
	if want == "" {
		return err
	}
	return fmt.Errorf("invalid value %q for --%s: give %s", iv.GetValue(), iv.GetFlag().Name, want)
}

// durationSyntax is what time.ParseDuration reads, at any size.
var durationSyntax = regexp.MustCompile(`^[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// maxDuration is the longest duration, in whole hours.
var maxDuration = fmt.Sprintf("%dh", math.MaxInt64/int64(time.Hour))

// defaultStateDir is $XDG_STATE_HOME/dpsconsole, or ~/.local/state/dpsconsole.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "dpsconsole")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".dpsconsole"
	}
	return filepath.Join(home, ".local", "state", "dpsconsole")
}
