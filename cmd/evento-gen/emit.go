package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/ast"
	"go/format"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// imports collects the imports of one generated file.
type imports struct {
	byPath map[string]string // path -> name used
	names  map[string]string // name -> path
}

func newImports() *imports {
	return &imports{byPath: map[string]string{}, names: map[string]string{}}
}

// use returns the name under which path is imported, adding the import.
func (im *imports) use(path, name string) string {
	if n, ok := im.byPath[path]; ok {
		return n
	}
	n := name
	for i := 2; im.names[n] != ""; i++ {
		n = name + strconv.Itoa(i)
	}
	im.byPath[path] = n
	im.names[n] = path
	return n
}

func (im *imports) write(b *bytes.Buffer) {
	if len(im.byPath) == 0 {
		return
	}
	paths := make([]string, 0, len(im.byPath))
	for p := range im.byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	b.WriteString("import (\n")
	for _, std := range []bool{true, false} {
		for _, p := range paths {
			if isStd(p) != std {
				continue
			}
			n := im.byPath[p]
			if n == defaultName(p) {
				fmt.Fprintf(b, "\t%q\n", p)
			} else {
				fmt.Fprintf(b, "\t%s %q\n", n, p)
			}
		}
		if std {
			b.WriteString("\n")
		}
	}
	b.WriteString(")\n\n")
}

func isStd(path string) bool { return !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") }

func defaultName(path string) string {
	switch path {
	case "github.com/vmihailenco/msgpack/v5":
		return "msgpack"
	}
	return path[strings.LastIndex(path, "/")+1:]
}

// file is one generated file being written.
type file struct {
	m   *model
	im  *imports
	buf bytes.Buffer
}

func (f *file) p(format string, args ...any) { fmt.Fprintf(&f.buf, format, args...) }

// ts renders t as seen from the generated package.
func (f *file) ts(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == f.m.pkg {
			return ""
		}
		return f.im.use(p.Path(), p.Name())
	})
}

func (f *file) pkg(path string) string { return f.im.use(path, defaultName(path)) }

// gen returns the name of the imported runtime package of generated code.
func (f *file) gen() string { return f.pkg(genPath) }

func (f *file) check(format string, args ...any) {
	f.p("if err := "+format+"; err != nil {\nreturn err\n}\n", args...)
}

// generate returns the generated files, by absolute name.
func (m *model) generate() (map[string][]byte, error) {
	byFile := map[string][]*aggregate{}
	for _, a := range m.aggregates {
		byFile[a.File] = append(byFile[a.File], a)
	}
	names := make([]string, 0, len(byFile))
	for n := range byFile {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string][]byte{}
	for i, src := range names {
		f := &file{m: m, im: newImports()}
		for _, a := range byFile[src] {
			f.aggregate(a)
		}
		if i == 0 {
			f.shared()
		}
		var b bytes.Buffer
		b.WriteString(header + "\n\n")
		fmt.Fprintf(&b, "package %s\n\n", m.pkg.Name())
		f.im.write(&b)
		b.Write(f.buf.Bytes())
		formatted, err := format.Source(b.Bytes())
		if err != nil {
			return nil, fmt.Errorf("evento-gen: format generated code for %s: %w\n%s", src, err, b.Bytes())
		}
		dst := filepath.Join(filepath.Dir(src), strings.TrimSuffix(filepath.Base(src), ".go")+outputSuffix)
		out[dst] = formatted
	}
	return out, nil
}

func (f *file) aggregate(a *aggregate) {
	m := f.m
	evento := f.pkg(eventoPath)
	aggregator := f.pkg(eventoPath + "/aggregator")
	subscription := f.pkg(eventoPath + "/subscription")
	msgpack := f.pkg("github.com/vmihailenco/msgpack/v5")
	fmtp := f.pkg("fmt")
	ctx := f.pkg("context")
	A := a.Name

	f.p("// Names of aggregate %s and its events.\nconst (\n", A)
	f.p("// %sAggregateType is the aggregate type of %s.\n%sAggregateType = %q\n", A, A, A, a.Type)
	f.p("// %sSnapshotRevision changes whenever %s, its events or its Apply methods change.\n%sSnapshotRevision = %q\n", A, A, A, m.revision(a))
	for _, e := range a.Events {
		f.p("// %sEventName is the stored name of event %s.\n%sEventName = %q\n", e.Name, e.Name, e.Name, e.EventName)
	}
	f.p(")\n\n")

	f.p("var (\n_ %s.Aggregate = (*%s)(nil)\n_ %s.Revisioned = (*%s)(nil)\n", aggregator, A, aggregator, A)
	for _, e := range a.Events {
		f.p("_ %s.AggregateEvent = %s{}\n_ %s.CustomEncoder = %s{}\n_ %s.CustomDecoder = (*%s)(nil)\n", aggregator, e.Name, msgpack, e.Name, msgpack, e.Name)
	}
	f.p(")\n\n")

	f.p("// If this function does not compile, %s or one of its events changed\n// shape since evento-gen last ran: run go generate.\nfunc _() {\n", A)
	f.guard(a.Obj)
	for _, e := range a.Events {
		f.guard(e.Obj)
	}
	f.p("}\n\n")

	f.p("// AggregateType returns %q.\nfunc (*%s) AggregateType() string { return %sAggregateType }\n\n", a.Type, A, A)
	f.p("// SnapshotRevision returns %sSnapshotRevision.\nfunc (*%s) SnapshotRevision() string { return %sSnapshotRevision }\n\n", A, A, A)
	f.p("// ApplyEvent decodes e's data and passes it to the Apply method of its\n// event. An unknown event name gives an error wrapping\n// aggregator.ErrUnknownEvent, data that does not decode one wrapping\n// evento.ErrDecode.\n")
	f.p("func (x *%s) ApplyEvent(e *%s.Event) error {\nswitch e.Name {\n", A, evento)
	for _, e := range a.Events {
		f.p("case %sEventName:\nvar data %s\nif err := %s.DecodeData(e, &data); err != nil {\nreturn err\n}\n", e.Name, e.Name, f.gen())
		args := "&data"
		if e.WithEvent {
			args += ", e"
		}
		if e.ReturnsErr {
			f.p("return x.Apply%s(%s)\n", e.Name, args)
		} else {
			f.p("x.Apply%s(%s)\nreturn nil\n", e.Name, args)
		}
	}
	f.p("}\nreturn %s.Errorf(\"%s: %%s: event %%q (version %%d): %%w\", %sAggregateType, e.Name, e.Version, %s.ErrUnknownEvent)\n}\n\n",
		fmtp, m.pkg.Name(), A, aggregator)

	f.p("// init registers the payload type of every event of %s in package\n// eventtype, so code that sees only a stored event can decode its data.\nfunc init() {\n", A)
	eventtype := f.pkg(eventoPath + "/eventtype")
	for _, e := range a.Events {
		f.p("%s.Register(%sAggregateType, %sEventName, func() any { return new(%s) })\n", eventtype, A, e.Name, e.Name)
	}
	f.p("}\n\n")

	for _, e := range a.Events {
		E := e.Name
		f.p("// EventName returns %q.\nfunc (%s) EventName() string { return %sEventName }\n\n", e.EventName, E, E)
		f.p("// EventAggregateType returns %q.\nfunc (%s) EventAggregateType() string { return %sAggregateType }\n\n", a.Type, E, A)
		f.p("// EncodeMsgpack encodes the event as msgpack.Marshal would, without reflection.\nfunc (x %s) EncodeMsgpack(enc *%s.Encoder) error { return eventoEncode%s(enc, &x) }\n\n", E, msgpack, E)
		f.p("// DecodeMsgpack decodes what msgpack.Marshal or EncodeMsgpack wrote.\nfunc (x *%s) DecodeMsgpack(dec *%s.Decoder) error { return eventoDecode%s(dec, x) }\n\n", E, msgpack, E)
	}

	f.p("// %sHandler handles the events of %s, one method per event. A\n// type that lacks a method does not compile as one.\ntype %sHandler interface {\n", A, A, A)
	for _, e := range a.Events {
		f.p("// On%s handles event %s; data is its decoded payload.\nOn%s(ctx %s.Context, e *%s.Event, data *%s) error\n", e.Name, e.EventName, e.Name, ctx, evento, e.Name)
	}
	f.p("}\n\n")
	f.p("// %sHandlers returns the handler set that decodes each event of %s and\n// passes it to h. It panics if h is nil.\nfunc %sHandlers(h %sHandler) %s.HandlerSet {\n", A, A, A, A, subscription)
	f.p("if h == nil {\npanic(\"%s: %sHandlers: nil handler\")\n}\n", m.pkg.Name(), A)
	f.p("return %s.HandlerSet{\nAggregateType: %sAggregateType,\nHandlers: map[string]%s.HandlerFunc{\n", subscription, A, subscription)
	for _, e := range a.Events {
		f.p("%sEventName: %s.Handler(h.On%s),\n", e.Name, f.gen(), e.Name)
	}
	f.p("},\n}\n}\n\n")

	for _, e := range a.Events {
		f.p("// %sHandler handles event %s of %s. A read model that handles some of\n// %s's events implements the interfaces of those; %sHandlersOf builds\n// its handler set.\ntype %sHandler interface {\n", e.Name, e.EventName, A, A, A, e.Name)
		f.p("// On%s handles event %s; data is its decoded payload.\nOn%s(ctx %s.Context, e *%s.Event, data *%s) error\n}\n\n", e.Name, e.EventName, e.Name, ctx, evento, e.Name)
	}
	f.p("// eventoHandlerSpecs%s describes the handler of each event of %s, for\n// %sHandlersOf.\nvar eventoHandlerSpecs%s = []%s.HandlerSpec{\n", A, A, A, A, f.gen())
	for _, e := range a.Events {
		f.p("{Event: %sEventName, Method: %q, Data: (*%s)(nil), Bind: func(h any) %s.HandlerFunc {\n", e.Name, "On"+e.Name, e.Name, subscription)
		f.p("if x, ok := h.(%sHandler); ok {\nreturn %s.Handler(x.On%s)\n}\nreturn nil\n}},\n", e.Name, f.gen(), e.Name)
	}
	f.p("}\n\n")
	var ifaces []string
	for _, e := range a.Events {
		ifaces = append(ifaces, e.Name+"Handler")
	}
	f.p("%s//\n%s//\n", comment(fmt.Sprintf("%sHandlersOf returns the handler set of the events of %s whose handler interface h implements (%s), so a read model implements only the events it handles. "+
		"The events it does not handle are acknowledged unread, unless the subscription's safety check is on (then skip them with Subscription.Skip). "+
		"A read model that handles events of several aggregates passes itself to the HandlersOf of each and registers every set.", A, A, strings.Join(ifaces, ", "))),
		comment(fmt.Sprintf("So that a misspelt method cannot silently handle nothing, the error (wrapping subscription.ErrInvalidConfig) reports an h that implements none of the interfaces, "+
			"and any exported method of h meant as a handler of %s that is not one: named On<Event> with another signature, a handler's signature under another name, or a pointer method on a value.", A)))
	f.p("// To have the compiler check the methods too, assert the interfaces:\n//\n//\tvar _ interface{ %s } = (*ReadModel)(nil)\nfunc %sHandlersOf(h any) (%s.HandlerSet, error) {\nreturn %s.HandlersOf(%sAggregateType, h, eventoHandlerSpecs%s)\n}\n\n",
		strings.Join(ifaces[:min(2, len(ifaces))], "; "), A, subscription, f.gen(), A, A)

	f.p("// %sCreate starts the first commit of a new %s under a fresh ULID id:\n// aggregator.Create(%sAggregateType).\nfunc %sCreate() *%s.Builder {\nreturn %s.Create(%sAggregateType)\n}\n\n", A, A, A, A, aggregator, aggregator, A)
	f.p("// %sAppend starts a commit to the %s with this id that expects its\n// current version to be version: aggregator.Append(%sAggregateType, id,\n// version). Events of another aggregate make Commit fail with an error\n// wrapping evento.ErrInvalidEvent.\nfunc %sAppend(id string, version uint64) *%s.Builder {\nreturn %s.Append(%sAggregateType, id, version)\n}\n\n", A, A, A, A, aggregator, aggregator, A)

	for _, e := range a.Events {
		f.structCodec(m.structs[e.Name])
	}
}

// comment wraps text into // lines of at most 76 characters.
func comment(text string) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		if n > 0 && n+1+len(w) > 76 {
			b.WriteString("\n")
			n = 0
		}
		if n == 0 {
			b.WriteString("//")
			n = 2
		}
		b.WriteString(" " + w)
		n += 1 + len(w)
	}
	return b.String() + "\n"
}

// guard writes an assignment that only compiles while t has the shape it
// had when the code was generated (field names, types, order and tags).
func (f *file) guard(obj *types.TypeName) {
	u := obj.Type().Underlying()
	if _, ok := u.(*types.Struct); ok {
		// Assignment to the unnamed struct type compares tags too.
		f.p("var _ %s = *new(%s)\n", f.ts(u), obj.Name())
		return
	}
	// A pointer conversion needs identical underlying types.
	f.p("_ = (*%s)((*%s)(nil))\n", f.ts(u), obj.Name())
}

// shared writes what the package's generated files share: eventoKeyMax, and the
// codecs of plain structs that events contain.
func (f *file) shared() {
	m := f.m
	var plain, named []string
	maxKey := 16
	for n, s := range m.structs {
		if s.Event == nil {
			plain = append(plain, n)
		}
		for _, fl := range s.Fields {
			maxKey = max(maxKey, len(fl.Key))
		}
	}
	for n := range m.named {
		named = append(named, n)
	}
	sort.Strings(plain)
	sort.Strings(named)

	if len(plain)+len(named) > 0 {
		f.p("// If this function does not compile, a type that events contain changed\n// shape since evento-gen last ran: run go generate.\nfunc _() {\n")
		for _, n := range plain {
			f.guard(m.structs[n].Obj)
		}
		for _, n := range named {
			f.guard(m.named[n])
		}
		f.p("}\n\n")
	}
	for _, n := range plain {
		f.structCodec(m.structs[n])
	}

	f.p("// eventoKeyMax is the longest msgpack key of the package's events: the\n// size of the generated decoders' key buffers.\nconst eventoKeyMax = %d\n\n", maxKey)
}

// structCodec writes the encode and decode functions of one struct.
func (f *file) structCodec(s *structInfo) {
	msgpack := f.pkg("github.com/vmihailenco/msgpack/v5")
	fmtp := f.pkg("fmt")
	S := s.Name
	f.p("func eventoEncode%s(enc *%s.Encoder, x *%s) error {\n", S, msgpack, S)
	fixed := 0
	var conds []string
	for _, fl := range s.Fields {
		if !fl.OmitEmpty {
			fixed++
			continue
		}
		e, _ := f.m.emptyExpr(fl.Type, "x."+fl.GoName)
		switch e {
		case "true":
			continue
		case "false":
			fixed++
			continue
		}
		conds = append(conds, e)
	}
	if len(conds) == 0 {
		f.check("enc.EncodeMapLen(%d)", fixed)
	} else {
		f.p("n := %d\n", fixed)
		for _, c := range conds {
			f.p("if !(%s) {\nn++\n}\n", c)
		}
		f.check("enc.EncodeMapLen(n)")
	}
	for _, fl := range s.Fields {
		x := "x." + fl.GoName
		cond := ""
		if fl.OmitEmpty {
			e, _ := f.m.emptyExpr(fl.Type, x)
			if e == "true" {
				continue
			}
			if e != "false" {
				cond = e
			}
		}
		if cond != "" {
			f.p("if !(%s) {\n", cond)
		}
		f.check("enc.EncodeString(%q)", fl.Key)
		f.encode(fl.Type, x, 0)
		if cond != "" {
			f.p("}\n")
		}
	}
	f.p("return nil\n}\n\n")

	f.p("func eventoDecode%s(dec *%s.Decoder, x *%s) error {\n", S, msgpack, S)
	f.p("n, array, err := %s.StructLen(dec)\nif err != nil {\nreturn err\n}\n", f.gen())
	f.p("if n < 0 || array && n == 0 {\n*x = %s{}\nreturn nil\n}\n", S)
	f.p("if array {\nif n != %d {\nreturn %s.Errorf(\"%s: array-encoded %s has %%d fields, want %d\", n)\n}\n", len(s.Fields), fmtp, f.m.pkg.Name(), S, len(s.Fields))
	f.p("for i := 0; i < n; i++ {\nif err := eventoField%s(dec, x, i); err != nil {\nreturn err\n}\n}\nreturn nil\n}\n", S)
	key := "key"
	if len(s.Fields) == 0 {
		key = "_"
	}
	f.p("var kb [eventoKeyMax]byte\nfor ; n > 0; n-- {\n%s, err := %s.Key(dec, kb[:])\nif err != nil {\nreturn err\n}\n", key, f.gen())
	if len(s.Fields) > 0 {
		f.p("switch string(key) {\n")
		for _, fl := range s.Fields {
			f.p("case %q:\n", fl.Key)
			f.decode(fl.Type, "x."+fl.GoName, 0)
		}
		f.p("default:\n")
	}
	f.check("dec.Skip()")
	if len(s.Fields) > 0 {
		f.p("}\n")
	}
	f.p("}\nreturn nil\n}\n\n")

	f.p("func eventoField%s(dec *%s.Decoder, x *%s, i int) error {\n", S, msgpack, S)
	if len(s.Fields) > 0 {
		f.p("switch i {\n")
		for i, fl := range s.Fields {
			f.p("case %d:\n", i)
			f.decode(fl.Type, "x."+fl.GoName, 0)
		}
		f.p("}\n")
	}
	f.p("return nil\n}\n\n")
}

var encodeCalls = map[kind]string{
	kBool: "EncodeBool(bool(%s))", kInt: "EncodeInt(int64(%s))", kInt8: "EncodeInt8(int8(%s))",
	kInt16: "EncodeInt16(int16(%s))", kInt32: "EncodeInt32(int32(%s))", kInt64: "EncodeInt64(int64(%s))",
	kUint: "EncodeUint(uint64(%s))", kUint8: "EncodeUint8(uint8(%s))", kUint16: "EncodeUint16(uint16(%s))",
	kUint32: "EncodeUint32(uint32(%s))", kUint64: "EncodeUint64(uint64(%s))",
	kFloat32: "EncodeFloat32(float32(%s))", kFloat64: "EncodeFloat64(float64(%s))",
	kString: "EncodeString(string(%s))", kBytes: "EncodeBytes([]byte(%s))", kTime: "EncodeTime(%s)",
}

var decodeCalls = map[kind]string{
	kBool: "DecodeBool", kInt: "DecodeInt64", kInt8: "DecodeInt64", kInt16: "DecodeInt64", kInt32: "DecodeInt64",
	kInt64: "DecodeInt64", kUint: "DecodeUint64", kUint8: "DecodeUint64", kUint16: "DecodeUint64",
	kUint32: "DecodeUint64", kUint64: "DecodeUint64", kFloat32: "DecodeFloat32", kFloat64: "DecodeFloat64",
	kString: "DecodeString", kBytes: "DecodeBytes",
}

// encode writes statements that encode the addressable expression x of
// type t exactly as msgpack's reflective encoder would.
func (f *file) encode(t types.Type, x string, d int) {
	t = types.Unalias(t)
	k, _ := f.m.classify(t)
	if call, ok := encodeCalls[k]; ok {
		f.check("enc."+call, x)
		return
	}
	u := t.Underlying()
	switch k {
	case kSlice:
		i := fmt.Sprintf("i%d", d)
		f.p("if %s == nil {\n", x)
		f.check("enc.EncodeNil()")
		f.p("} else {\n")
		f.check("enc.EncodeArrayLen(len(%s))", x)
		f.p("for %s := range %s {\n", i, x)
		f.encode(u.(*types.Slice).Elem(), fmt.Sprintf("%s[%s]", x, i), d+1)
		f.p("}\n}\n")
	case kMap:
		mk, mv := fmt.Sprintf("k%d", d), fmt.Sprintf("v%d", d)
		f.p("if %s == nil {\n", x)
		f.check("enc.EncodeNil()")
		f.p("} else {\n")
		f.check("enc.EncodeMapLen(len(%s))", x)
		f.p("for %s, %s := range %s {\n", mk, mv, x)
		f.encode(u.(*types.Map).Key(), mk, d+1)
		f.encode(u.(*types.Map).Elem(), mv, d+1)
		f.p("}\n}\n")
	case kPtr:
		f.p("if %s == nil {\n", x)
		f.check("enc.EncodeNil()")
		f.p("} else {\n")
		f.encode(u.(*types.Pointer).Elem(), "(*"+x+")", d+1)
		f.p("}\n")
	case kStruct:
		f.check("eventoEncode%s(enc, &%s)", t.(*types.Named).Obj().Name(), x)
	default: // kFallback
		f.check("enc.EncodeValue(%s.ValueOf(&%s).Elem())", f.pkg("reflect"), x)
	}
}

// decode writes statements that decode into the addressable expression x
// of type t as msgpack's reflective decoder would.
func (f *file) decode(t types.Type, x string, d int) {
	t = types.Unalias(t)
	k, _ := f.m.classify(t)
	v := fmt.Sprintf("v%d", d)
	if call, ok := decodeCalls[k]; ok {
		f.p("{\n%s, err := dec.%s()\nif err != nil {\nreturn err\n}\n%s = %s(%s)\n}\n", v, call, x, f.ts(t), v)
		return
	}
	u := t.Underlying()
	switch k {
	case kTime:
		msgpcode := f.pkg("github.com/vmihailenco/msgpack/v5/msgpcode")
		f.p("if c, err := dec.PeekCode(); err != nil {\nreturn err\n} else if c == %s.Nil {\n", msgpcode)
		f.check("dec.DecodeNil()")
		f.p("%s = %s{}\n} else {\n%s, err := dec.DecodeTime()\nif err != nil {\nreturn err\n}\n%s = %s\n}\n", x, f.ts(t), v, x, v)
	case kSlice:
		n, s, i := fmt.Sprintf("n%d", d), fmt.Sprintf("s%d", d), fmt.Sprintf("i%d", d)
		f.p("{\n%s, err := dec.DecodeArrayLen()\nif err != nil {\nreturn err\n}\n", n)
		f.p("if %s < 0 {\n%s = nil\n} else {\n%s := make(%s, 0, %s.Cap(%s))\n", n, x, s, f.ts(t), f.gen(), n)
		f.p("for %s := 0; %s < %s; %s++ {\nvar %s %s\n", i, i, n, i, v, f.ts(u.(*types.Slice).Elem()))
		f.decode(u.(*types.Slice).Elem(), v, d+1)
		f.p("%s = append(%s, %s)\n}\n%s = %s\n}\n}\n", s, s, v, x, s)
	case kMap:
		n, mm, i, mk := fmt.Sprintf("n%d", d), fmt.Sprintf("m%d", d), fmt.Sprintf("i%d", d), fmt.Sprintf("k%d", d)
		mt := u.(*types.Map)
		f.p("{\n%s, err := dec.DecodeMapLen()\nif err != nil {\nreturn err\n}\n", n)
		f.p("if %s < 0 {\n%s = nil\n} else {\n%s := make(%s, %s.Cap(%s))\n", n, x, mm, f.ts(t), f.gen(), n)
		f.p("for %s := 0; %s < %s; %s++ {\nvar %s %s\n", i, i, n, i, mk, f.ts(mt.Key()))
		f.decode(mt.Key(), mk, d+1)
		f.p("var %s %s\n", v, f.ts(mt.Elem()))
		f.decode(mt.Elem(), v, d+1)
		f.p("%s[%s] = %s\n}\n%s = %s\n}\n}\n", mm, mk, v, x, mm)
	case kPtr:
		msgpcode := f.pkg("github.com/vmihailenco/msgpack/v5/msgpcode")
		f.p("if c, err := dec.PeekCode(); err != nil {\nreturn err\n} else if c == %s.Nil {\n", msgpcode)
		f.check("dec.DecodeNil()")
		f.p("%s = nil\n} else {\nif %s == nil {\n%s = new(%s)\n}\n", x, x, x, f.ts(u.(*types.Pointer).Elem()))
		f.decode(u.(*types.Pointer).Elem(), "(*"+x+")", d+1)
		f.p("}\n")
	case kStruct:
		f.check("eventoDecode%s(dec, &%s)", t.(*types.Named).Obj().Name(), x)
	default: // kFallback
		f.check("dec.DecodeValue(%s.ValueOf(&%s).Elem())", f.pkg("reflect"), x)
	}
}

// revision hashes the token streams (so neither comments nor layout count)
// of the aggregate's struct, its events, their Apply methods and the
// package's types they use, with the aggregate type and event names.
func (m *model) revision(a *aggregate) string {
	h := sha256.New()
	fmt.Fprintf(h, "evento-gen revision 1\n%s\n", a.Type)
	m.hashNode(h, a.Spec)
	used := map[*types.TypeName]bool{}
	m.usedTypes(a.Obj.Type().Underlying(), used)
	for _, e := range a.Events {
		fmt.Fprintf(h, "\nevent %s %s\n", e.Name, e.EventName)
		m.hashNode(h, e.Spec)
		if e.Apply != nil {
			m.hashNode(h, e.Apply)
		}
		m.usedTypes(e.Obj.Type().Underlying(), used)
	}
	objs := make([]*types.TypeName, 0, len(used))
	for o := range used {
		objs = append(objs, o)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Name() < objs[j].Name() })
	for _, o := range objs {
		if spec := m.specs[o]; spec != nil {
			fmt.Fprintf(h, "\ntype %s\n", o.Name())
			m.hashNode(h, spec)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (m *model) usedTypes(t types.Type, used map[*types.TypeName]bool) {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if t.Obj().Pkg() != m.pkg || used[t.Obj()] {
			return
		}
		used[t.Obj()] = true
		m.usedTypes(t.Underlying(), used)
		for i := 0; i < t.TypeArgs().Len(); i++ {
			m.usedTypes(t.TypeArgs().At(i), used)
		}
	case *types.Struct:
		for i := 0; i < t.NumFields(); i++ {
			m.usedTypes(t.Field(i).Type(), used)
		}
	case *types.Slice:
		m.usedTypes(t.Elem(), used)
	case *types.Array:
		m.usedTypes(t.Elem(), used)
	case *types.Pointer:
		m.usedTypes(t.Elem(), used)
	case *types.Map:
		m.usedTypes(t.Key(), used)
		m.usedTypes(t.Elem(), used)
	}
}

// hashNode writes the tokens of n's source text to h, skipping comments.
// Semicolons, written or inserted at line ends, count the same, and not at
// all before a closing bracket, so one-line and multi-line forms agree.
func (m *model) hashNode(h io.Writer, n ast.Node) {
	start, end := m.fset.Position(n.Pos()), m.fset.Position(n.End())
	src := m.src[start.Filename]
	if src == nil || end.Offset > len(src) {
		return
	}
	text := src[start.Offset:end.Offset]
	fs := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fs.AddFile("", -1, len(text)), text, nil, 0)
	semi := false
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON {
			semi = true
			continue
		}
		if semi && tok != token.RBRACE && tok != token.RPAREN {
			fmt.Fprint(h, "; ")
		}
		semi = false
		if lit == "" {
			lit = tok.String()
		}
		fmt.Fprintf(h, "%s ", lit)
	}
}
