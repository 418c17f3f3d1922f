package main

import (
	"fmt"
	"go/types"
	"reflect"
	"strings"

	"github.com/vmihailenco/tagparser/v2"
)

// kind is how generated code encodes and decodes a type.
type kind int

const (
	kUnsupported kind = iota
	kBool
	kInt   // int: EncodeInt (compact)
	kInt8  // EncodeInt8
	kInt16 // EncodeInt16
	kInt32 // EncodeInt32
	kInt64 // EncodeInt64
	kUint
	kUint8
	kUint16
	kUint32
	kUint64
	kFloat32
	kFloat64
	kString
	kBytes
	kTime
	kSlice
	kMap
	kPtr
	kStruct   // a struct of this package with generated codec functions
	kFallback // left to msgpack's reflective codec through EncodeValue/DecodeValue
)

// marshalMethods are the methods through which msgpack's reflective codec
// lets a type encode or decode itself; a type with any of them is left to
// msgpack (kFallback) so the bytes stay the same.
var marshalMethods = map[string]bool{
	"EncodeMsgpack": true, "DecodeMsgpack": true,
	"MarshalMsgpack": true, "UnmarshalMsgpack": true,
	"MarshalBinary": true, "UnmarshalBinary": true,
	"MarshalText": true, "UnmarshalText": true,
}

func isTime(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Time"
}

// hasMethod reports whether t's pointer method set (which holds the value
// methods too) has a hand-written method accepted by pred.
func (m *model) hasMethod(t types.Type, pred func(*types.Func) bool) bool {
	ms := types.NewMethodSet(types.NewPointer(t))
	for i := 0; i < ms.Len(); i++ {
		fn, ok := ms.At(i).Obj().(*types.Func)
		if !ok || m.isGenerated(fn.Pos()) {
			continue
		}
		if pred(fn) {
			return true
		}
	}
	return false
}

func (m *model) hasMarshaler(t types.Type) bool {
	return m.hasMethod(t, func(fn *types.Func) bool { return marshalMethods[fn.Name()] })
}

// isLocal reports whether n is a non-generic named type of the package.
func (m *model) isLocal(n *types.Named) bool {
	return n.Obj().Pkg() == m.pkg && n.TypeArgs().Len() == 0 && n.TypeParams().Len() == 0
}

// classify says how t is encoded. For kUnsupported the string says why.
func (m *model) classify(t types.Type) (kind, string) {
	return m.classifySeen(t, map[types.Type]bool{})
}

func (m *model) classifySeen(t types.Type, seen map[types.Type]bool) (kind, string) {
	t = types.Unalias(t)
	if isTime(t) {
		return kTime, ""
	}
	if n, ok := t.(*types.Named); ok {
		if m.hasMarshaler(t) {
			return kFallback, ""
		}
		if seen[t] {
			return kFallback, "" // recursive type: checked where it started
		}
		seen[t] = true
		if !m.isLocal(n) {
			if why := m.unsupported(n.Underlying(), seen); why != "" {
				return kUnsupported, why
			}
			return kFallback, ""
		}
		if st, ok := n.Underlying().(*types.Struct); ok {
			for i := 0; i < st.NumFields(); i++ {
				if st.Field(i).Pkg() != m.pkg {
					// e.g. type Stamp time.Time: msgpack sees the
					// fields of another package.
					if why := m.unsupported(st, seen); why != "" {
						return kUnsupported, why
					}
					return kFallback, ""
				}
			}
			return kStruct, ""
		}
		return m.classifySeen(n.Underlying(), seen)
	}
	switch t := t.(type) {
	case *types.Basic:
		switch t.Kind() {
		case types.Bool:
			return kBool, ""
		case types.Int:
			return kInt, ""
		case types.Int8:
			return kInt8, ""
		case types.Int16:
			return kInt16, ""
		case types.Int32:
			return kInt32, ""
		case types.Int64:
			return kInt64, ""
		case types.Uint:
			return kUint, ""
		case types.Uint8:
			return kUint8, ""
		case types.Uint16:
			return kUint16, ""
		case types.Uint32:
			return kUint32, ""
		case types.Uint64:
			return kUint64, ""
		case types.Float32:
			return kFloat32, ""
		case types.Float64:
			return kFloat64, ""
		case types.String:
			return kString, ""
		}
		return kUnsupported, fmt.Sprintf("msgpack cannot encode %s", t)
	case *types.Slice:
		if b, ok := types.Unalias(t.Elem()).(*types.Basic); ok && b.Kind() == types.Uint8 {
			return kBytes, ""
		}
		if k, why := m.classifySeen(t.Elem(), seen); k == kUnsupported {
			return k, why
		}
		return kSlice, ""
	case *types.Map:
		if k, why := m.classifySeen(t.Key(), seen); k == kUnsupported {
			return k, why
		}
		if k, why := m.classifySeen(t.Elem(), seen); k == kUnsupported {
			return k, why
		}
		return kMap, ""
	case *types.Pointer:
		if k, why := m.classifySeen(t.Elem(), seen); k == kUnsupported {
			return k, why
		}
		return kPtr, ""
	}
	if why := m.unsupported(t, seen); why != "" {
		return kUnsupported, why
	}
	return kFallback, ""
}

// unsupported returns why msgpack's codec cannot round-trip t, or "".
func (m *model) unsupported(t types.Type, seen map[types.Type]bool) string {
	t = types.Unalias(t)
	if isTime(t) {
		return ""
	}
	if _, ok := t.(*types.Named); ok {
		if m.hasMarshaler(t) {
			return ""
		}
		if seen[t] {
			return ""
		}
		seen[t] = true
		t = t.Underlying()
	}
	switch t := t.(type) {
	case *types.Basic:
		switch t.Kind() {
		case types.Complex64, types.Complex128, types.Uintptr, types.UnsafePointer, types.Invalid:
			return fmt.Sprintf("msgpack cannot encode %s", t)
		}
		return ""
	case *types.Chan:
		return "msgpack cannot encode channels"
	case *types.Signature:
		return "msgpack cannot encode functions"
	case *types.TypeParam:
		return "type parameters are not supported"
	case *types.Interface:
		if t.NumMethods() > 0 || !t.IsMethodSet() {
			return "msgpack cannot decode into an interface with methods (only any is supported)"
		}
		return ""
	case *types.Slice:
		return m.unsupported(t.Elem(), seen)
	case *types.Array:
		return m.unsupported(t.Elem(), seen)
	case *types.Pointer:
		return m.unsupported(t.Elem(), seen)
	case *types.Map:
		if why := m.unsupported(t.Key(), seen); why != "" {
			return why
		}
		return m.unsupported(t.Elem(), seen)
	case *types.Struct:
		for i := 0; i < t.NumFields(); i++ {
			f := t.Field(i)
			if tag := tagparser.Parse(reflect.StructTag(t.Tag(i)).Get("msgpack")); tag.Name == "-" || (!f.Exported() && !f.Embedded()) {
				continue
			}
			if why := m.unsupported(f.Type(), seen); why != "" {
				return fmt.Sprintf("field %s: %s", f.Name(), why)
			}
		}
		return ""
	}
	return fmt.Sprintf("unsupported type %s", t)
}

// emptyExpr returns the Go expression that is true when x is empty in the
// sense of msgpack's omitempty, or ok=false if evento-gen cannot tell.
func (m *model) emptyExpr(t types.Type, x string) (string, bool) {
	return m.emptyExprSeen(t, x, map[types.Type]bool{})
}

func (m *model) emptyExprSeen(t types.Type, x string, seen map[types.Type]bool) (string, bool) {
	t = types.Unalias(t)
	under := t.Underlying()
	if _, isIface := under.(*types.Interface); isIface {
		return "", false
	}
	// msgpack asks the value (not its address) for IsZero() bool.
	if sel := types.NewMethodSet(t).Lookup(nil, "IsZero"); sel != nil && isZeroSig(sel.Obj()) && !m.isGenerated(sel.Obj().Pos()) {
		switch under.(type) {
		case *types.Pointer, *types.Map, *types.Slice, *types.Chan, *types.Signature:
			return fmt.Sprintf("(%s == nil || %s.IsZero())", x, x), true
		}
		return x + ".IsZero()", true
	}
	switch u := under.(type) {
	case *types.Basic:
		switch {
		case u.Info()&types.IsBoolean != 0:
			return "!" + x, true
		case u.Info()&types.IsString != 0:
			return "len(" + x + ") == 0", true
		case u.Info()&types.IsNumeric != 0:
			return x + " == 0", true
		}
	case *types.Slice, *types.Map:
		return "len(" + x + ") == 0", true
	case *types.Array:
		if u.Len() == 0 {
			return "true", true
		}
		return "false", true
	case *types.Pointer:
		return x + " == nil", true
	case *types.Struct:
		if seen[t] {
			return "", false
		}
		seen[t] = true
		var parts []string
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			tag := tagparser.Parse(reflect.StructTag(u.Tag(i)).Get("msgpack"))
			if tag.Name == "-" || (!f.Exported() && !f.Embedded()) {
				continue
			}
			if f.Embedded() || f.Name() == "_msgpack" {
				return "", false
			}
			if !tag.HasOption("omitempty") {
				return "false", true
			}
			e, ok := m.emptyExprSeen(f.Type(), x+"."+f.Name(), seen)
			if !ok {
				return "", false
			}
			parts = append(parts, "("+e+")")
		}
		if len(parts) == 0 {
			return "true", true
		}
		return strings.Join(parts, " && "), true
	}
	return "", false
}

func isZeroSig(obj types.Object) bool {
	fn, ok := obj.(*types.Func)
	if !ok {
		return false
	}
	sig := fn.Type().(*types.Signature)
	if sig.Params().Len() != 0 || sig.Results().Len() != 1 {
		return false
	}
	b, ok := types.Unalias(sig.Results().At(0).Type()).(*types.Basic)
	return ok && b.Kind() == types.Bool
}

// fieldUse is what a struct's fields are checked for: the same rules, with
// the differences that come from who encodes the struct.
type fieldUse int

const (
	// forCodec: an event, or a plain struct an event contains, which the
	// generated codecs encode.
	forCodec fieldUse = iota
	// forSnapshot: an aggregate, or a struct its fields contain, which
	// snapshots encode with msgpack's reflective codec (snapshot.Encode).
	forSnapshot
)

// addStruct records a struct of the package that gets codec functions and
// checks its fields, recursing into the structs they use.
func (m *model) addStruct(obj *types.TypeName, ev *event) {
	name := obj.Name()
	if _, done := m.structs[name]; done {
		return
	}
	si := &structInfo{Name: name, Obj: obj, Event: ev}
	m.structs[name] = si
	si.Fields = m.checkFields(name, obj.Type().Underlying().(*types.Struct), forCodec)
}

// checkAggregate checks that a snapshot of aggregate a keeps its whole
// state: every field, and every field of the package's structs it holds,
// is stored by msgpack or explicitly excluded with `msgpack:"-"`. An
// aggregate that encodes itself (EncodeMsgpack, MarshalMsgpack,
// MarshalBinary, MarshalText) is its own business.
func (m *model) checkAggregate(a *aggregate) {
	if m.hasMarshaler(a.Obj.Type()) {
		return
	}
	m.checkSnapshotType(a.Obj.Type(), a.Name)
}

// checkSnapshotType checks the package's structs that a snapshot encodes
// reflectively as part of a value of type t, found at via (e.g.
// Account.Items, which names an anonymous struct). Each type is checked
// once.
func (m *model) checkSnapshotType(t types.Type, via string) {
	t = types.Unalias(t)
	if m.snapshotChecked[t] {
		return
	}
	m.snapshotChecked[t] = true
	if isTime(t) || m.hasMarshaler(t) {
		return
	}
	if n, ok := t.(*types.Named); ok {
		if !m.isLocal(n) {
			return // another package's type: classify checked what it can
		}
		if _, codec := m.structs[n.Obj().Name()]; codec {
			return // checked for the generated codecs, which are stricter
		}
		if st, ok := n.Underlying().(*types.Struct); ok {
			m.checkFields(n.Obj().Name(), st, forSnapshot)
			return
		}
	}
	switch u := t.Underlying().(type) {
	case *types.Slice:
		m.checkSnapshotType(u.Elem(), via)
	case *types.Array:
		m.checkSnapshotType(u.Elem(), via)
	case *types.Pointer:
		m.checkSnapshotType(u.Elem(), via)
	case *types.Map:
		m.checkSnapshotType(u.Key(), via)
		m.checkSnapshotType(u.Elem(), via)
	case *types.Struct: // an anonymous struct
		m.checkFields(via, u, forSnapshot)
	}
}

// checkFields checks that msgpack stores every field of st, the struct
// called name, unless the field is tagged `msgpack:"-"`, and that evento-gen
// can handle it for use; it reports each problem at the field and returns
// the fields that are stored. For forCodec it registers the structs and
// named types the codecs need; for forSnapshot it checks the structs the
// fields contain.
func (m *model) checkFields(name string, st *types.Struct, use fieldUse) []*fieldInfo {
	var fields []*fieldInfo
	keys := map[string]string{}
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		tag := tagparser.Parse(reflect.StructTag(st.Tag(i)).Get("msgpack"))
		if tag.Name == "-" {
			continue
		}
		if f.Name() == "_msgpack" {
			if use == forSnapshot {
				continue // msgpack's struct options: its reflective codec honours them
			}
			m.errorf(f.Pos(), "%s: the _msgpack struct options field is not supported by evento-gen", name)
			continue
		}
		if f.Embedded() {
			if use == forSnapshot {
				m.errorf(f.Pos(), "%s: embedded field %s is not supported in an aggregate by evento-gen (msgpack would inline its fields into snapshots unchecked); give the field a name", name, f.Name())
				continue
			}
			m.errorf(f.Pos(), "%s: embedded field %s is not supported by evento-gen (msgpack would inline it); give the field a name", name, f.Name())
			continue
		}
		if !f.Exported() {
			if use == forSnapshot {
				m.errorf(f.Pos(), "%s: unexported field %s would silently not be stored in snapshots, so a load from a snapshot would see it zero; export it, or tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot", name, f.Name())
				continue
			}
			m.errorf(f.Pos(), "%s: unexported field %s would silently not be stored; export it or tag it `msgpack:\"-\"`", name, f.Name())
			continue
		}
		if use == forCodec {
			for opt := range tag.Options {
				if opt != "omitempty" {
					m.errorf(f.Pos(), "%s.%s: msgpack tag option %q is not supported by evento-gen", name, f.Name(), opt)
				}
			}
		}
		key := tag.Name
		if key == "" {
			key = f.Name()
		}
		if prev, dup := keys[key]; dup {
			m.errorf(f.Pos(), "%s: fields %s and %s have the same msgpack key %q", name, prev, f.Name(), key)
			continue
		}
		keys[key] = f.Name()
		k, why := m.classify(f.Type())
		if k == kUnsupported {
			hint := ""
			if use == forSnapshot {
				hint = "; snapshots cannot store it: tag it `msgpack:\"-\"` with a comment saying why it need not survive a snapshot, or change its type"
			}
			m.errorf(f.Pos(), "%s.%s has unsupported type %s: %s%s", name, f.Name(), types.TypeString(f.Type(), types.RelativeTo(m.pkg)), why, hint)
			continue
		}
		fi := &fieldInfo{GoName: f.Name(), Key: key, Type: f.Type(), OmitEmpty: tag.HasOption("omitempty"), Pos: f.Pos()}
		if use == forSnapshot {
			fields = append(fields, fi)
			m.checkSnapshotType(f.Type(), name+"."+f.Name())
			continue
		}
		if fi.OmitEmpty {
			if _, ok := m.emptyExpr(f.Type(), "x."+f.Name()); !ok {
				m.errorf(f.Pos(), "%s.%s: omitempty on type %s is not supported by evento-gen", name, f.Name(), types.TypeString(f.Type(), types.RelativeTo(m.pkg)))
				continue
			}
		}
		fields = append(fields, fi)
		m.collect(f.Type(), map[types.Type]bool{})
	}
	return fields
}

// collect registers the package's structs and named types that the
// generated code for t refers to.
func (m *model) collect(t types.Type, seen map[types.Type]bool) {
	t = types.Unalias(t)
	if seen[t] {
		return
	}
	seen[t] = true
	k, _ := m.classify(t)
	switch k {
	case kStruct:
		n := t.(*types.Named)
		m.addStruct(n.Obj(), nil)
		return
	case kFallback, kUnsupported, kTime:
		return
	}
	if n, ok := t.(*types.Named); ok && m.isLocal(n) {
		m.named[n.Obj().Name()] = n.Obj()
	}
	switch u := t.Underlying().(type) {
	case *types.Slice:
		m.collect(u.Elem(), seen)
	case *types.Map:
		m.collect(u.Key(), seen)
		m.collect(u.Elem(), seen)
	case *types.Pointer:
		m.collect(u.Elem(), seen)
	}
}
