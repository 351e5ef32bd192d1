//go:build tools

// Package deps pins the project's module dependencies while the packages that
// use them are written in parallel. It is never built.
package deps

import (
	_ "charm.land/bubbles/v2/table"
	_ "charm.land/bubbletea/v2"
	_ "charm.land/fang/v2"
	_ "charm.land/lipgloss/v2"
	_ "github.com/Azure/azure-sdk-for-go/sdk/azcore"
	_ "github.com/charmbracelet/x/exp/teatest/v2"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/spf13/cobra"
	_ "modernc.org/sqlite"
)
