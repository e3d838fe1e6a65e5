package expect

import (
	"github.com/picket-dev/picket/internal/scrub"

	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is what an expression sees. Typed, so unknown names and type errors are load
// errors rather than run-time surprises.
type exprEnv struct {
	Status  int               `expr:"status"`
	JSON    any               `expr:"json"` // the body decoded as JSON; nil when not JSON
	Headers map[string]string `expr:"headers"`
	Latency time.Duration     `expr:"latency"`
	Body    string            `expr:"body"`
	Vars    map[string]string `expr:"vars"`
}

type exprCheck struct {
	src     string
	program *vm.Program
	// What the expression refers to, so Evaluate builds only that (decoding the body and
	// copying headers cost more than most expressions).
	usesJSON, usesBody, usesHeaders bool
}

func compileExpr(src string) (*exprCheck, error) {
	program, err := expr.Compile(src, expr.Env(exprEnv{}), expr.AsBool())
	if err != nil {
		return nil, oneLine(err)
	}
	e := &exprCheck{src: src, program: program}
	names := identifiers(program.Node())
	everything := names["$env"] // $env["body"] reaches any field by name
	e.usesJSON = everything || names["json"]
	e.usesBody = everything || names["body"]
	e.usesHeaders = everything || names["headers"]
	return e, nil
}

// identifiers collects the names an expression's tree refers to.
func identifiers(root ast.Node) map[string]bool {
	v := identVisitor{}
	ast.Walk(&root, v)
	return v
}

type identVisitor map[string]bool

func (v identVisitor) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		v[id.Value] = true
	}
}

func (e *exprCheck) check(o *Observation, body *bodyView) string {
	env := exprEnv{Status: o.Status, Latency: o.Latency, Vars: o.Vars}
	if e.usesJSON {
		env.JSON = body.decode()
	}
	if e.usesBody {
		env.Body = string(o.Body)
	}
	if e.usesHeaders {
		env.Headers = firstValues(o.Headers)
	}
	out, err := expr.Run(e.program, env)
	if err != nil {
		// Cut: a run-time message may quote a whole operand, such as the body.
		return fmt.Sprintf("expr `%s` failed: %s", e.src, scrub.Excerpt([]byte(oneLine(err).Error()), 200))
	}
	if ok, _ := out.(bool); ok {
		return ""
	}
	return fmt.Sprintf("expr `%s` is false", e.src)
}

// firstValues flattens headers to their first values; net/http keys are already
// canonical.
func firstValues(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for name, values := range h {
		if len(values) > 0 {
			m[http.CanonicalHeaderKey(name)] = values[0]
		}
	}
	return m
}

// oneLineError shows an expr error on one line ("message (line:col)"): expr's own text
// adds a multi-line source snippet that breaks "FILE:LINE:COL: message" output and
// "; "-joined failures. The original stays reachable through Unwrap (config may want
// the *file.Error's position).
type oneLineError struct {
	msg string
	err error
}

func (e *oneLineError) Error() string { return e.msg }
func (e *oneLineError) Unwrap() error { return e.err }

func oneLine(err error) error {
	var fe *file.Error
	switch {
	case errors.As(err, &fe) && fe.Line > 0:
		return &oneLineError{msg: fmt.Sprintf("%s (%d:%d)", fe.Message, fe.Line, fe.Column+1), err: err}
	case errors.As(err, &fe):
		return &oneLineError{msg: fe.Message, err: err}
	case strings.ContainsRune(err.Error(), '\n'):
		return &oneLineError{msg: strings.ReplaceAll(err.Error(), "\n", " "), err: err}
	}
	return err
}
