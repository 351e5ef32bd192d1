package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner): stub until this command is written.
func newRegisterCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "register",
		Short:  "Register a simulated device",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("register: not built yet") },
	}
}
