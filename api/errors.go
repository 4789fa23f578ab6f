package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
)

// Sentinel errors that handlers return and the error handler maps to
// status codes.
var (
	// ErrNotFound means the thing asked about does not exist (404). A
	// FeedSyncer reports an unknown feed by wrapping ErrNotFound or
	// store.ErrNotFound.
	ErrNotFound = errors.New("not found")
	// ErrBadRequest means the request is malformed (400).
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge means the request asks for more than the configured
	// limits allow (413).
	ErrTooLarge = errors.New("request too large")
	// ErrUnauthorized means the request carries no API key where one is
	// needed (401).
	ErrUnauthorized = errors.New("api key required")
	// ErrForbidden means the API key is unknown or its role does not allow
	// the request (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotReady means no index is loaded yet (503).
	ErrNotReady = errors.New("not ready")
	// ErrUnavailable means a feature is not configured on this server (501).
	ErrUnavailable = errors.New("not available on this server")
	// ErrConflict means the request does not fit the current state, such
	// as syncing a disabled feed (409).
	ErrConflict = errors.New("conflict")
	// ErrUpstream means a source the request depends on failed, such as a
	// feed whose fetch failed (502). Its message is shown, with any URL in
	// it redacted, so that an operator sees why.
	ErrUpstream = errors.New("upstream failed")
)

// errorBody is the body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// status maps an error to its HTTP status and the message the client sees.
// Only errors known to carry a safe message are shown as they are; any
// other error is an internal one and its text stays in the log.
func status(err error) (code int, msg string, internal bool) {
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		code = he.Code
		msg = http.StatusText(code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		if code == http.StatusNotFound && he.Message == http.StatusText(http.StatusNotFound) {
			msg = "no such route"
		}
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed on this route"
		}
		return code, msg, code >= 500
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), false
	case errors.Is(err, reputation.ErrOutsideRetention),
		errors.Is(err, ErrInvalidAddr),
		errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest, err.Error(), false
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, err.Error(), false
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized, err.Error(), false
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, err.Error(), false
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error(), false
	case errors.Is(err, ErrNotReady):
		return http.StatusServiceUnavailable, err.Error(), false
	case errors.Is(err, ErrUnavailable):
		return http.StatusNotImplemented, err.Error(), false
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, err.Error(), false
	case errors.Is(err, ErrUpstream):
		return http.StatusBadGateway, redactURLsIn(err.Error()), false
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timed out", true
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return 499, "request cancelled", false
	}
	return http.StatusInternalServerError, "internal error", true
}

// errorHandler is the Echo HTTPErrorHandler: the one place where errors
// become status codes. It logs internal errors (the handlers return them
// without logging) and answers {"error": msg}.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		code, msg, internal := status(err)
		if internal {
			logger.Error("request failed", "method", c.Request().Method, "route", c.Path(), "status", code, "err", err)
		}
		if c.Response().Committed {
			return
		}
		if code == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="rampart"`)
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(code)
		} else {
			err = c.JSON(code, errorBody{Error: msg})
		}
		if err != nil {
			logger.Debug("write error answer", "err", err)
		}
	}
}
