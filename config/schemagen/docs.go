package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

// readDocs collects the comments of struct types and their fields in the Go files of
// dirs (tests left out): "Type" -> the type's doc, "Type.Field" -> the field's doc or
// line comment, each as one line.
func readDocs(dirs []string) (map[string]string, error) {
	docs := map[string]string{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			collect(f, docs)
		}
	}
	return docs, nil
}

func collect(f *ast.File, docs map[string]string) {
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			doc := ts.Doc
			if doc == nil && len(gd.Specs) == 1 {
				doc = gd.Doc
			}
			docs[ts.Name.Name] = oneLine(doc)
			for _, field := range st.Fields.List {
				text := oneLine(field.Doc)
				if text == "" {
					text = oneLine(field.Comment)
				}
				for _, name := range field.Names {
					docs[ts.Name.Name+"."+name.Name] = text
				}
			}
		}
	}
}

// oneLine joins a comment's lines into one sentence-like line.
func oneLine(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.Join(strings.Fields(cg.Text()), " ")
}
