package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/tui"
)

// consoleFlags are the root command's own flags: they apply to the console.
type consoleFlags struct {
	readOnly bool
	logLevel string
}

func addConsoleFlags(root *cobra.Command, a *app) {
	root.Flags().BoolVar(&a.console.readOnly, "readonly", false, "open the console with every destructive action hidden and disabled")
	root.Flags().StringVar(&a.console.logLevel, "log-level", "info", "what the console logs to "+consoleLogName+" in the state directory: debug (adds every request), info, warn or error")
}

// resumeHints tells how to resume the clean-up jobs quitting stopped.
func resumeHints(jobs []string, stateDir string, explicitDir bool) string {
	var b strings.Builder
	for _, id := range jobs {
		resume := "dpsconsole cleanup --resume " + id
		if explicitDir {
			resume += " --state-dir " + shellQuote(stateDir)
		}
		fmt.Fprintf(&b, "clean-up job %s was stopped before it finished; the rest is logged, resume it with (on the same target):\n  %s\n", id, resume)
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// consoleLogName is the console's log file in the state directory: the
// console owns the terminal, so nothing may be logged to it.
const consoleLogName = "dpsconsole.log"

// runConsole opens the terminal console on the target.
func runConsole(cmd *cobra.Command, a *app) (err error) {
	level, err := parseLogLevel(a.console.logLevel)
	if err != nil {
		return err
	}
	// Said last, once the target is closed: how to resume what quitting stopped.
	var hints string
	defer func() { fmt.Fprint(a.err, hints) }()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if err := os.MkdirAll(a.stateDir, 0o700); err != nil {
		return fmt.Errorf("create the state directory %s: %w", a.stateDir, err)
	}
	logPath := filepath.Join(a.stateDir, consoleLogName)
	logger, logFile, err := openConsoleLog(logPath, level, consoleLogMax)
	if err != nil {
		return err
	}
	defer logFile.Close()
	defer dps.LogToSlog(nil)

	opts := tui.Options{ReadOnly: a.console.readOnly, Logger: logger}
	azure, err := a.wantsAzure()
	if err != nil {
		return err
	}
	if azure {
		// Signed in inside the console: the target picker shows a device
		// code, which stderr under the alternate screen would hide.
		tr, caPEM, err := a.azureTransport()
		if err != nil {
			return err
		}
		defer tr.CloseIdleConnections()
		if opts.Azure, err = a.consoleAzure(tr, caPEM, logger); err != nil {
			return err
		}
		logger.Info("console started on the target picker", "readonly", a.console.readOnly)
	} else {
		var t *target // err stays the named result: Close's error joins it
		if t, err = a.openTarget(ctx); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, t.Close()) }()
		tui.FailFast(t.transport)
		opts.Target = a.consoleTarget(t, logger)
		logger.Info("console started", "target", t.name, "readonly", a.console.readOnly)
	}
	defer cancel() // on quit, stop work still in flight before the target closes
	m := tui.New(ctx, opts)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(a.in), tea.WithOutput(a.out))
	_, err = p.Run()
	hints = resumeHints(m.InterruptedJobs(), a.stateDir, cmd.Flags().Changed("state-dir"))
	if errors.Is(err, tea.ErrInterrupted) || (errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil) {
		return nil // ctrl+c or a signal: a normal way out
	}
	if err != nil {
		return fmt.Errorf("console: %w (details in %s)", err, logPath)
	}
	return nil
}
