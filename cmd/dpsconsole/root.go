package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"charm.land/fang/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK      = 0
	exitInvalid = 1 // some input was invalid, or the operation failed
	exitUsage   = 2 // the command line itself was wrong
)

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

// sentence prints an error with its first letter upper-cased.
type sentence struct{ error }

func (s sentence) Error() string {
	msg := s.error.Error()
	r, n := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[n:]
}

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
emulator, so everything works on a laptop with no Azure account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConsole(cmd, a) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{flagValueError(err)} })
	addConsoleFlags(root, a)
	pf := root.PersistentFlags()
	pf.StringVar(&a.stateDir, "state-dir", defaultStateDir(), "state directory: emulator data, journals, job logs, log file")
	pf.StringVar(&a.connectionString, "connection-string", "", "service connection string of a DPS (or $DPS_CONNECTION_STRING); without one the embedded emulator is used")
	pf.StringVar(&a.caFile, "ca-file", "", "extra CA to trust, a PEM file (or $DPS_CA_FILE), e.g. a standalone emulator's ca.pem")
	root.AddCommand(
		newKeysCmd(a),
		newEmulatorCmd(a),
		newGroupsCmd(a),
		newEnrollmentsCmd(a),
		newRegistrationsCmd(a),
		newRegisterCmd(a),
		newCleanupCmd(a),
		newFleetCmd(a),
	)
	withUsageLine(root)
	return root
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
