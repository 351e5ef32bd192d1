package main

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

func newEnrollmentsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enrollments",
		Short: "Manage individual enrollments",
		Long:  "List, show, create, update, delete and bulk-import individual (per-device) enrollments.",
	}
	cmd.AddCommand(newEnrollmentsListCmd(a), newEnrollmentsShowCmd(a), newEnrollmentsCreateCmd(a),
		newEnrollmentsUpdateCmd(a), newEnrollmentsDeleteCmd(a), newEnrollmentsImportCmd(a))
	return cmd
}

var enrollmentColumns = []column{
	{"REGISTRATION ID", 32}, {"DEVICE ID", 20}, {"ATTESTATION", 12}, {"STATUS", 9}, {"ALLOCATION", 10}, {"REGISTRATION", 10}, {"UPDATED (UTC)", 19}, {"IOT HUBS", 0},
}

func enrollmentRow(e dps.IndividualEnrollment) []string {
	reg := ""
	if e.RegistrationState != nil {
		reg = string(e.RegistrationState.Status)
	}
	return []string{e.RegistrationID, e.DeviceID, string(e.Attestation.Type), string(e.ProvisioningStatus), string(e.AllocationPolicy),
		reg, timeCell(e.LastUpdatedDateTimeUTC), strings.Join(e.IoTHubs, ",")}
}

func newEnrollmentsListCmd(a *app) *cobra.Command {
	var output string
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List individual enrollments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkListFlags(output, pageSize); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				if output == outputJSONL {
					_, err := streamJSONL(cmd.Context(), a.out, t.client.NewRawEnrollmentPager(&dps.PagerOptions{PageSize: pageSize, Prefetch: true}), individualKind.hiddenRaw)
					return err
				}
				pager := t.client.NewEnrollmentPager(&dps.PagerOptions{PageSize: pageSize, Prefetch: true})
				_, err := streamList(cmd.Context(), a.out, output, pager,
					func(p dps.EnrollmentPage) []dps.IndividualEnrollment { return individualKind.hidden(p.Items) }, enrollmentColumns, enrollmentRow)
				return err
			})
		},
	}
	addListOutputFlag(cmd, &output)
	cmd.Flags().Int32Var(&pageSize, "page-size", 100, "enrollments fetched per request")
	return cmd
}

func newEnrollmentsShowCmd(a *app) *cobra.Command {
	var output string
	var showKeys bool
	cmd := &cobra.Command{
		Use:   "show REGISTRATION-ID",
		Short: "Show an individual enrollment",
		Args:  idArgs("registration ID", false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				e, err := individualKind.read(cmd.Context(), t.client, args[0], showKeys)
				if err != nil {
					return err
				}
				return printEnrollment(a, output, e, showKeys)
			})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&showKeys, "show-keys", false, "read and print the symmetric keys and the webhook URL's query")
	return cmd
}

func printEnrollment(a *app, output string, e dps.IndividualEnrollment, showKeys bool) error {
	if output == outputJSON {
		return individualKind.printJSON(a.out, e, showKeys)
	}
	fields(a.out,
		"Registration ID", e.RegistrationID,
		"Device ID", e.DeviceID,
		"ETag", e.ETag,
		"Created (UTC)", timeCell(e.CreatedDateTimeUTC),
		"Updated (UTC)", timeCell(e.LastUpdatedDateTimeUTC),
	)
	showSettings(a.out, individualFields(&e), showKeys)
	if s := e.RegistrationState; s != nil {
		fields(a.out,
			"Registration", string(s.Status),
			"Assigned hub", s.AssignedHub,
			"Registered device ID", s.DeviceID,
		)
	}
	return nil
}

func newEnrollmentsCreateCmd(a *app) *cobra.Command {
	var output, deviceID string
	var showKeys bool
	var f settingsFlags
	cmd := &cobra.Command{
		Use:   "create REGISTRATION-ID",
		Short: "Create a symmetric-key individual enrollment",
		Args:  idArgs("registration ID", false),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkOutput(output); err != nil {
				return err
			}
			if w := keys.RegistrationIDWarning(id); w != "" {
				fmt.Fprintf(a.err, "warning: registration ID %q: %s\n", id, w)
			}
			e := dps.IndividualEnrollment{RegistrationID: id, DeviceID: deviceID}
			if err := f.apply(cmd.Flags(), individualFields(&e)); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				created, err := individualKind.create(cmd.Context(), t.client, id, e)
				if err != nil {
					return err
				}
				return printEnrollment(a, output, created, showKeys)
			})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&showKeys, "show-keys", false, "print the keys of the new enrollment")
	cmd.Flags().StringVar(&deviceID, "device-id", "", "device ID in the IoT hub (default: the registration ID)")
	f.register(cmd.Flags())
	return cmd
}

func newEnrollmentsUpdateCmd(a *app) *cobra.Command {
	var output, etag, deviceID string
	var f settingsFlags
	cmd := &cobra.Command{
		Use:   "update REGISTRATION-ID",
		Short: "Change settings of an individual enrollment",
		Long: `Change the settings given as flags and keep every other one. The enrollment is
read, changed and written back with its ETag, so a concurrent change is refused
rather than overwritten.`,
		Args: idArgs("registration ID", false),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkOutput(output); err != nil {
				return err
			}
			if !anyChanged(cmd.Flags(), "device-id") {
				return usagef("nothing to change: give at least one setting flag (see --help)")
			}
			change := func(e *dps.IndividualEnrollment) {
				if cmd.Flags().Changed("device-id") {
					e.DeviceID = deviceID
				}
				e.RegistrationState = nil // read-only
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				updated, err := individualKind.update(cmd.Context(), t.client, id, cmd.Flags(), &f, etag, change)
				if err != nil {
					return err
				}
				return printEnrollment(a, output, updated, false)
			})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&etag, "etag", "", "update only if the enrollment still has this ETag (default: the ETag just read)")
	cmd.Flags().StringVar(&deviceID, "device-id", "", "device ID in the IoT hub")
	f.register(cmd.Flags())
	return cmd
}

func newEnrollmentsDeleteCmd(a *app) *cobra.Command {
	var etag, output string
	cmd := &cobra.Command{
		Use:   "delete REGISTRATION-ID",
		Short: "Delete an individual enrollment",
		Args:  idArgs("registration ID", false),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkOutput(output); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				if err := t.client.DeleteEnrollment(cmd.Context(), id, ifMatch(etag)); err != nil {
					return resourceError(individualKind.noun, id, err)
				}
				return printDeleted(a, output, id, "deleted individual enrollment "+id)
			})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the enrollment still has this ETag")
	return cmd
}

// ifMatch makes write options from an --etag flag ("" = unconditional).
func ifMatch(etag string) *dps.WriteOptions {
	if etag == "" {
		return nil
	}
	m := azcore.ETag(etag)
	return &dps.WriteOptions{IfMatch: &m}
}
