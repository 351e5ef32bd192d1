package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/dps/cleanup"
	"github.com/dpsconsole/dpsconsole/tui"
)

// consoleFlags are the root command's own flags: they apply to the console.
type consoleFlags struct {
	readOnly bool
}

func addConsoleFlags(root *cobra.Command, a *app) {
	root.Flags().BoolVar(&a.console.readOnly, "readonly", false, "open the console with every destructive action hidden and disabled")
}

// consoleLogName is the console's log file in the state directory: the
// console owns the terminal, so nothing may be logged to it.
const consoleLogName = "dpsconsole.log"

// runConsole opens the terminal console on the target.
func runConsole(cmd *cobra.Command, a *app) (err error) {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	if err := os.MkdirAll(a.stateDir, 0o700); err != nil {
		return fmt.Errorf("create the state directory %s: %w", a.stateDir, err)
	}
	logPath := filepath.Join(a.stateDir, consoleLogName)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the log file: %w", err)
	}
	defer logFile.Close()
	logger := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dps.LogToSlog(logger)
	defer dps.LogToSlog(nil)

	t, err := a.openTarget(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.Close()) }()
	defer cancel() // on quit, stop work still in flight before the target closes
	journal, jerr := cleanup.OpenJournal(a.stateDir, t.client.Host())
	if jerr != nil {
		logger.Warn("no known-groups journal; orphan detection will be weaker", "error", jerr)
	}
	logger.Info("console started", "target", t.name, "readonly", a.console.readOnly)
	m := tui.New(ctx, tui.Options{
		Target: &tui.Target{
			Name: t.name, IDScope: t.idScope, DeviceEndpoint: t.deviceEndpoint, Service: t.client,
			MQTTEndpoint: t.mqttEndpoint, HubMQTTEndpoints: t.hubMQTT,
			HubConnectionStrings: t.hubConnectionStrings, HTTPClient: t.transport, Journal: journal, StateDir: a.stateDir,
		},
		ReadOnly: a.console.readOnly,
		Logger:   logger,
	})
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(a.in), tea.WithOutput(a.out))
	_, err = p.Run()
	if errors.Is(err, tea.ErrInterrupted) || (errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil) {
		return nil // ctrl+c or a signal: a normal way out
	}
	if err != nil {
		return fmt.Errorf("console: %w (details in %s)", err, logPath)
	}
	return nil
}
