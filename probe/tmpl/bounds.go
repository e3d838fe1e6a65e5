package tmpl

import (
	"errors"
	"fmt"
	"text/template/parse"
)

// Bounds of a config template. A template runs at load (the render check), on every
// probe and on every reload; one that loops a billion times, or writes gigabytes, would
// wedge all three (`{{range 1000000000}}` took validate to 4 GB). Config strings need
// neither: URLs, headers and bodies are short, and loops, if any, walk the data.
const (
	// MaxOutputBytes bounds what one rendering writes.
	MaxOutputBytes = 1 << 20
	// MaxRangeCount bounds a range over a number, and MaxIterations the product of the
	// numbers of nested ranges.
	MaxRangeCount = 1000
	MaxIterations = 100_000
)

// checkBounds rejects what could run unbounded: define/template/block (recursion),
// ranges over anything but the data (a field like .vars, $.region) or a small number.
func checkBounds(root *parse.ListNode, defined int) error {
	if defined > 1 {
		return errors.New("define, block and template are not allowed in config templates")
	}
	return walkBounds(root, 1)
}

func walkBounds(n parse.Node, iterations int) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walkBounds(c, iterations); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return errors.New("template actions are not allowed in config templates")
	case *parse.IfNode:
		return walkBranch(&n.BranchNode, iterations)
	case *parse.WithNode:
		return walkBranch(&n.BranchNode, iterations)
	case *parse.RangeNode:
		count, err := rangeCount(n.Pipe)
		if err != nil {
			return err
		}
		if iterations *= count; iterations > MaxIterations {
			return fmt.Errorf("nested ranges would run %d times or more; at most %d are allowed", iterations, MaxIterations)
		}
		return walkBranch(&n.BranchNode, iterations)
	}
	return nil
}

func walkBranch(b *parse.BranchNode, iterations int) error {
	if err := walkBounds(b.List, iterations); err != nil {
		return err
	}
	return walkBounds(b.ElseList, iterations)
}

// rangeCount is how many times a range may run: a number up to MaxRangeCount, or 1 for
// a walk over the data (bounded by the config itself).
func rangeCount(p *parse.PipeNode) (int, error) {
	if len(p.Cmds) == 1 && len(p.Cmds[0].Args) == 1 {
		switch a := p.Cmds[0].Args[0].(type) {
		case *parse.FieldNode, *parse.DotNode:
			return 1, nil
		case *parse.VariableNode:
			if a.Ident[0] == "$" {
				return 1, nil
			}
		case *parse.NumberNode:
			if a.IsInt && a.Int64 >= 0 && a.Int64 <= MaxRangeCount {
				return max(int(a.Int64), 1), nil
			}
			return 0, fmt.Errorf("range %s: at most %d iterations are allowed", a.Text, MaxRangeCount)
		}
	}
	return 0, fmt.Errorf("range over %s: a config template may range over its data (.vars, .region, $.x) or a number up to %d", p, MaxRangeCount)
}

// limitedWriter fails once more than max bytes were written; text/template stops at a
// write error.
type limitedWriter struct {
	buf []byte
	max int
}

var errTooLong = fmt.Errorf("output is longer than %d bytes", MaxOutputBytes)

func (w *limitedWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > w.max {
		return 0, errTooLong
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}
