package dps

import (
	"context"
	"log/slog"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
)

// LogToSlog sends azcore's diagnostic log (requests, responses, retries) to l
// at debug level, or turns it off when l is nil. azcore's listener is
// process-wide, so the last call wins. azcore redacts the Authorization header
// and query parameters, so SAS tokens never reach the log.
func LogToSlog(l *slog.Logger) {
	if l == nil {
		azlog.SetListener(nil)
		return
	}
	azlog.SetEvents(azlog.EventRequest, azlog.EventResponse, azlog.EventResponseError, azlog.EventRetryPolicy)
	azlog.SetListener(func(ev azlog.Event, msg string) {
		l.LogAttrs(context.Background(), slog.LevelDebug, "azcore", slog.String("event", string(ev)), slog.String("msg", msg))
	})
}
