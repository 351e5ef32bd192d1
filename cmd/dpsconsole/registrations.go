package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dpsconsole/dpsconsole/dps"
)

func newRegistrationsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registrations",
		Short: "Manage registration records",
		Long: `List, show and delete device registration records: the result of each
device's last registration. Records outlive the enrollment group that admitted
the device.`,
	}
	cmd.AddCommand(newRegistrationsListCmd(a), newRegistrationsShowCmd(a), newRegistrationsDeleteCmd(a), newRegistrationsExportCmd(a))
	return cmd
}

var registrationColumns = []column{
	{"REGISTRATION ID", 32}, {"DEVICE ID", 24}, {"STATUS", 10}, {"SUBSTATUS", 18}, {"UPDATED (UTC)", 19}, {"ASSIGNED HUB", 0},
}

func registrationRow(s dps.DeviceRegistrationState) []string {
	return []string{s.RegistrationID, s.DeviceID, string(s.Status), string(s.Substatus), timeCell(s.LastUpdatedDateTimeUTC), s.AssignedHub}
}

func newRegistrationsListCmd(a *app) *cobra.Command {
	var output, group string
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "list --group ID",
		Short: "List the registration records of an enrollment group's devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkListFlags(output, pageSize); err != nil {
				return err
			}
			if group == "" {
				return usagef("flag --group is required: registration records are listed per enrollment group")
			}
			if err := checkID("--group", group); err != nil {
				return err
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				var n int
				var err error
				opts := &dps.PagerOptions{PageSize: pageSize, Prefetch: true}
				if output == outputJSONL {
					n, err = streamJSONL(cmd.Context(), a.out, t.client.NewRawRegistrationStatePager(group, opts), nil)
				} else {
					n, err = streamList(cmd.Context(), a.out, output, t.client.NewRegistrationStatePager(group, opts),
						func(p dps.RegistrationStatePage) []dps.DeviceRegistrationState { return p.Items }, registrationColumns, registrationRow)
				}
				if err == nil && n == 0 {
					noteUnknownGroup(cmd.Context(), a.err, t.client, group)
				}
				return err
			})
		},
	}
	addListOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&group, "group", "", "enrollment group ID (it may since have been deleted)")
	cmd.Flags().Int32Var(&pageSize, "page-size", 1000, "records fetched per request")
	return cmd
}

// noteUnknownGroup says so when group, which matched no record, does not
// exist either: a mistyped group ID lists nothing, like a group without
// devices.
func noteUnknownGroup(ctx context.Context, w io.Writer, c *dps.Client, group string) {
	if _, err := c.GetEnrollmentGroup(ctx, group); dps.IsNotFound(err) {
		fmt.Fprintf(w, "no enrollment group %q exists, and no records carry that group ID; check it with \"dpsconsole groups list\"\n", group)
	}
}

func registrationError(id string, err error) error {
	return resourceError("registration record", id, err)
}

func newRegistrationsShowCmd(a *app) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show REGISTRATION-ID",
		Short: "Show a registration record",
		Args:  idArgs("registration ID", false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			return a.withTarget(ctx, func(t *target) error {
				s, err := t.client.GetRegistrationState(ctx, args[0])
				if err != nil {
					return registrationError(args[0], err)
				}
				if output == outputJSON {
					return writeJSON(a.out, s)
				}
				errCode := ""
				if s.ErrorCode != 0 {
					errCode = fmt.Sprint(s.ErrorCode)
				}
				group := ""
				if s.SymmetricKey != nil {
					group = s.SymmetricKey.EnrollmentGroupID
				}
				fields(a.out,
					"Registration ID", s.RegistrationID,
					"Device ID", s.DeviceID,
					"Status", string(s.Status),
					"Substatus", string(s.Substatus),
					"Assigned hub", s.AssignedHub,
					"Enrollment group", group,
					"Error code", errCode,
					"Error message", s.ErrorMessage,
					"ETag", s.ETag,
					"Created (UTC)", timeCell(s.CreatedDateTimeUTC),
					"Updated (UTC)", timeCell(s.LastUpdatedDateTimeUTC),
					"Payload", jsonCell(s.Payload),
				)
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func newRegistrationsDeleteCmd(a *app) *cobra.Command {
	var etag, output string
	cmd := &cobra.Command{
		Use:   "delete REGISTRATION-ID...",
		Short: "Delete registration records (not the enrollments, not the hub devices)",
		Args:  idArgs("registration ID", true),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if etag != "" && len(args) > 1 {
				return usagef("flag --etag names one record's version; give one registration ID with it, not %d", len(args))
			}
			return a.withTarget(cmd.Context(), func(t *target) error {
				return deleteRegistrations(cmd.Context(), a, t, output, args, etag)
			})
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the record still has this ETag (one ID only)")
	return cmd
}

// deleteRegistrations deletes each record, reporting every failure and
// carrying on; it fails (exit 1) if any delete failed.
func deleteRegistrations(ctx context.Context, a *app, t *target, output string, ids []string, etag string) error {
	results := make([]deleted, 0, len(ids))
	failed := 0
	for _, id := range ids {
		err := t.client.DeleteRegistrationState(ctx, id, ifMatch(etag))
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		r := deleted{ID: id, Deleted: err == nil}
		switch {
		case err != nil:
			failed++
			r.ErrorCode, r.Message = dps.ErrorCodeOf(err), registrationError(id, err).Error()
			if output == outputTable {
				fmt.Fprintln(a.err, r.Message)
			}
		case output == outputTable:
			fmt.Fprintf(a.out, "deleted registration record %s\n", id)
		}
		results = append(results, r)
	}
	if output == outputJSON {
		if err := writeJSON(a.out, results); err != nil {
			return err
		}
	}
	if failed > 0 {
		fmt.Fprintf(a.err, "%d of %d deletes failed\n", failed, len(ids))
		return silentExit{exitInvalid}
	}
	return nil
}
