package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newEmulatorCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "emulator",
		Short:  "Run the built-in DPS + IoT Hub emulator",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("emulator: not built yet") },
	}
}
