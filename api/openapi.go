package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPISpec is the OpenAPI 3 description of every route of the server.
// It is embedded so that the binary serves the document of its own
// version; openapi_test.go fails when a route is missing from it or an
// answer does not validate against it.
//
//go:embed openapi.yaml
var openAPISpec []byte

// OpenAPISpec returns the OpenAPI 3 description of the REST API, as YAML.
// The slice is shared: callers must not modify it.
func OpenAPISpec() []byte { return openAPISpec }

// yamlContentType is the media type of the OpenAPI document (RFC 9512).
var yamlContentType = []string{"application/yaml"}

// openAPI serves GET /openapi.yaml. The document is public: it holds no
// secret and clients need it before they hold a key.
func openAPI(c echo.Context) error {
	w := c.Response()
	w.Header()["Content-Type"] = yamlContentType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPISpec) // a write error means the client left
	return nil
}
