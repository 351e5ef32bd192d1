package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/spf13/pflag"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/keys"
)

// enrollmentKind is what the show, create and update commands need to know
// about enrollment groups or individual enrollments, so those commands share
// one read, create and update: the client's calls (method expressions), the
// shared settings, and the words for messages.
type enrollmentKind[T any] struct {
	noun    string // in messages: "enrollment group"
	command string // the parent command: "groups"
	get     func(*dps.Client, context.Context, string) (T, error)
	getKeys func(*dps.Client, context.Context, string) (dps.AttestationMechanism, error)
	put     func(*dps.Client, context.Context, T, *dps.WriteOptions) (T, error)
	fields  func(*T) enrollmentFields
}

var (
	groupKind = enrollmentKind[dps.EnrollmentGroup]{"enrollment group", "groups", (*dps.Client).GetEnrollmentGroup,
		(*dps.Client).GetEnrollmentGroupAttestation, (*dps.Client).CreateOrUpdateEnrollmentGroup, groupFields}
	individualKind = enrollmentKind[dps.IndividualEnrollment]{"individual enrollment", "enrollments", (*dps.Client).GetEnrollment,
		(*dps.Client).GetEnrollmentAttestation, (*dps.Client).CreateOrUpdateEnrollment, individualFields}
)

// read gets one enrollment, with its keys when showKeys (GET hides them).
func (k enrollmentKind[T]) read(ctx context.Context, c *dps.Client, id string, showKeys bool) (T, error) {
	v, err := k.get(c, ctx, id)
	if err == nil && showKeys {
		*k.fields(&v).attestation, err = k.getKeys(c, ctx, id)
	}
	if err != nil {
		return v, resourceError(k.noun, id, err)
	}
	return v, nil
}

// create writes a new enrollment. PUT creates or replaces; refuse to replace
// silently.
func (k enrollmentKind[T]) create(ctx context.Context, c *dps.Client, id string, v T) (T, error) {
	if _, err := k.get(c, ctx, id); err == nil {
		return v, fmt.Errorf("%s %q already exists; change it with \"%s update %s\"", k.noun, id, k.command, id)
	} else if !dps.IsNotFound(err) {
		return v, resourceError(k.noun, id, err)
	}
	created, err := k.put(c, ctx, v, nil)
	if err != nil {
		return created, resourceError(k.noun, id, err)
	}
	return created, nil
}

// update reads an enrollment, changes it (change, if any, then the setting
// flags set in fs) and writes it back with the ETag just read, or with --etag
// when given, so a concurrent change is refused rather than overwritten.
func (k enrollmentKind[T]) update(ctx context.Context, c *dps.Client, id string, fs *pflag.FlagSet, f *settingsFlags, etag string, change func(*T)) (T, error) {
	v, err := k.get(c, ctx, id)
	if err != nil {
		return v, resourceError(k.noun, id, err)
	}
	hook := webhookOf(k.fields(&v))
	if change != nil {
		change(&v)
	}
	fields := k.fields(&v)
	if err := f.apply(fs, fields); err != nil {
		return v, err
	}
	if err := keepWebhook(fields, hook); err != nil {
		return v, err
	}
	readKeys := func(ctx context.Context) (dps.AttestationMechanism, error) { return k.getKeys(c, ctx, id) }
	if err := keepKeys(ctx, fields.attestation, readKeys); err != nil {
		return v, resourceError(k.noun, id, err)
	}
	match := azcore.ETag(*fields.etag)
	if fs.Changed("etag") {
		match = azcore.ETag(etag)
	}
	updated, err := k.put(c, ctx, v, &dps.WriteOptions{IfMatch: &match})
	if err != nil {
		return updated, resourceError(k.noun, id, err)
	}
	return updated, nil
}

// webhookOf is the custom allocation's webhook URL, "" when none.
func webhookOf(f enrollmentFields) string {
	if c := *f.customAllocation; c != nil {
		return c.WebhookURL
	}
	return ""
}

// keepWebhook puts the current webhook URL back where a file (JSON as show
// prints it) carries it masked, as keepKeys does the keys; a URL changed
// around its masked password or query is refused rather than written.
func keepWebhook(f enrollmentFields, current string) error {
	c := *f.customAllocation
	if c == nil || c.WebhookURL == current {
		return nil
	}
	if current != "" && c.WebhookURL == keys.MaskURL(current) {
		kept := *c
		kept.WebhookURL = current
		*f.customAllocation = &kept
		return nil
	}
	if strings.Contains(c.WebhookURL, keys.Mask) || strings.Contains(c.WebhookURL, ":xxxxx@") {
		return usagef("the webhook URL %s holds a masked password or query: give the whole URL (show --show-keys prints it)", keys.MaskURL(c.WebhookURL))
	}
	return nil
}

// printJSON writes an enrollment in the service's shape, without its
// secrets unless showKeys (as the table form).
func (k enrollmentKind[T]) printJSON(w io.Writer, v T, showKeys bool) error {
	if !showKeys {
		hideSecrets(k.fields(&v))
	}
	return writeJSON(w, v)
}

// hidden hides the secrets of every item of a listing page, in place.
func (k enrollmentKind[T]) hidden(items []T) []T {
	for i := range items {
		hideSecrets(k.fields(&items[i]))
	}
	return items
}

// hideSecrets drops the symmetric keys and masks the webhook URL's
// credentials (password, query). The webhook definition is replaced, not
// changed: the enrollment it came from may share it.
func hideSecrets(f enrollmentFields) {
	f.attestation.SymmetricKey = nil
	if c := *f.customAllocation; c != nil {
		masked := *c
		masked.WebhookURL = keys.MaskURL(c.WebhookURL)
		*f.customAllocation = &masked
	}
}
