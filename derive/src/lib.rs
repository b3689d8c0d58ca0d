//! `#[derive(Trace)]` for `arenagc`.
//!
//! Generates `unsafe impl arenagc::gc::Trace` whose `trace` visits every field (of a struct, or
//! of the active enum variant) in order, except fields marked `#[trace(skip)]`. Every type
//! parameter gets a `Trace` bound. Attributes (each documented, with an example, on the macro):
//!
//! - `#[trace(skip)]` on a field: not traced (a field that holds no `Gc`);
//! - `#[trace(finalize = path)]`: `path: fn(&Gc<Self>)` becomes the PEP 442 finalizer;
//! - `#[trace(legacy_del = path)]`: `path: fn(&Gc<Self>)` becomes the legacy finalizer;
//! - `#[trace(crate = path)]`: the path of the `arenagc` crate (default `::arenagc`), for a
//!   renamed dependency or a re-export.
//!
//! The impl is sound because it visits exactly the fields the value owns, once each; a skipped
//! field holding a `Gc` only keeps its referent alive.
//!
//! Each field's trace call carries the span of the field's type, so a field whose type does
//! not implement `Trace` is reported at that field, with the `Trace` trait's
//! `#[diagnostic::on_unimplemented]` message (which names `#[trace(skip)]`). A `finalize` or
//! `legacy_del` path of the wrong type is reported at the path.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr, Path, parse_macro_input};

/// Derive `arenagc::gc::Trace`: the generated `trace` visits every field of the struct (or of
/// the active enum variant), in order, except those marked `#[trace(skip)]`; every type
/// parameter gets a `Trace` bound; `Trace::NAME` is the type's name. Unions are refused.
///
/// # Attributes
///
/// ## `#[trace(skip)]` (on a field)
///
/// The field is not traced: for a field whose type holds no `Gc` and does not implement
/// `Trace` (a foreign type, a closure, a file handle). A skipped field that does hold a `Gc`
/// keeps its referent alive: the collector counts that reference as external, so a cycle
/// through it is never collected (never unsound).
///
/// ```
/// use arenagc::{Gc, Trace};
///
/// struct Socket; // no Trace impl, holds no Gc
///
/// #[derive(Trace)]
/// struct Conn {
///     peer: Option<Gc<Conn>>,
///     #[trace(skip)]
///     socket: Socket,
/// }
/// let c = Gc::new(Conn { peer: None, socket: Socket });
/// assert!(c.peer.is_none());
/// ```
///
/// ## `#[trace(finalize = path)]` (on the type)
///
/// `path` names a `fn(&Gc<Self>)`, the PEP 442 finalizer (`Trace::FINALIZE`): it runs at most
/// once per object, before the object (or its garbage cycle) is torn down, and may resurrect
/// the object by storing a clone of the `Gc`.
///
/// ```
/// use std::cell::Cell;
/// use arenagc::{Gc, Trace};
///
/// thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });
///
/// #[derive(Trace)]
/// #[trace(finalize = Res::finalize)]
/// struct Res(u32);
///
/// impl Res {
///     fn finalize(this: &Gc<Res>) {
///         FINALIZED.with(|n| n.set(n.get() + this.0));
///     }
/// }
/// drop(Gc::new(Res(5)));
/// assert_eq!(FINALIZED.with(Cell::get), 5);
/// ```
///
/// ## `#[trace(legacy_del = path)]` (on the type)
///
/// `path` names a `fn(&Gc<Self>)`, the legacy finalizer (`Trace::LEGACY_DEL`, Python's
/// `__del__` before PEP 442): it runs each time the count drops to zero, and a garbage cycle
/// holding such an object is never collected: it goes to `gc::garbage()`.
///
/// ```
/// use std::cell::Cell;
/// use arenagc::{Gc, Trace};
///
/// thread_local!(static DELS: Cell<u32> = const { Cell::new(0) });
///
/// #[derive(Trace)]
/// #[trace(legacy_del = Old::del)]
/// struct Old;
///
/// impl Old {
///     fn del(_this: &Gc<Old>) {
///         DELS.with(|n| n.set(n.get() + 1));
///     }
/// }
/// drop(Gc::new(Old));
/// assert_eq!(DELS.with(Cell::get), 1);
/// ```
///
/// ## `#[trace(crate = path)]` (on the type)
///
/// The path of the `arenagc` crate in the generated code (default `::arenagc`): for a
/// dependency renamed in `Cargo.toml` (`gc = { package = "arenagc", ... }`) or a crate that
/// re-exports `arenagc`. A string literal is accepted too (`crate = "::gc"`).
///
/// ```
/// mod reexport {
///     pub use arenagc as collector;
/// }
/// use arenagc::{Gc, Trace};
///
/// #[derive(Trace)]
/// #[trace(crate = reexport::collector)]
/// struct Leaf(u8);
/// assert_eq!(Gc::new(Leaf(1)).0, 1);
/// ```
///
/// # Errors
///
/// A field whose type does not implement `Trace` is reported at that field's type, with a
/// note to add `#[trace(skip)]` if it holds no `Gc`; an unknown attribute at the attribute; a
/// `finalize`/`legacy_del` path that is not a `fn(&Gc<Self>)` at the path.
#[proc_macro_derive(Trace, attributes(trace))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct TypeAttrs {
    finalize: Option<Path>,
    legacy_del: Option<Path>,
    krate: Option<Path>,
}

fn type_attrs(attrs: &[Attribute]) -> syn::Result<TypeAttrs> {
    let mut out = TypeAttrs::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        a.parse_nested_meta(|m| {
            let slot = if m.path.is_ident("finalize") {
                &mut out.finalize
            } else if m.path.is_ident("legacy_del") {
                &mut out.legacy_del
            } else if m.path.is_ident("crate") {
                &mut out.krate
            } else if m.path.is_ident("skip") {
                return Err(m.error("`#[trace(skip)]` goes on a field, not on the type"));
            } else {
                return Err(m.error(
                    "unknown trace attribute: expected `finalize = path`, `legacy_del = path` or `crate = path` on a type (`skip` on a field)",
                ));
            };
            if slot.is_some() {
                return Err(m.error("this trace attribute is given twice"));
            }
            let v = m.value()?;
            *slot = Some(if v.peek(LitStr) {
                v.parse::<LitStr>()?.parse()?
            } else {
                v.parse()?
            });
            Ok(())
        })?;
    }
    Ok(out)
}

fn is_skipped(attrs: &[Attribute]) -> syn::Result<bool> {
    let mut skip = false;
    for a in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("skip") {
                skip = true;
                Ok(())
            } else {
                Err(m.error(
                    "unknown trace attribute on a field: expected `skip` (`finalize`, `legacy_del` and `crate` go on the type)",
                ))
            }
        })?;
    }
    Ok(skip)
}

/// Bindings for the fields (`__f0, __f1, ...`) and the trace calls of kept ones. Each call
/// carries the span of its field's type, so a type without `Trace` is reported there.
fn fields_trace(fields: &Fields, krate: &Path) -> syn::Result<(TokenStream2, TokenStream2)> {
    let mut pats = Vec::new();
    let mut calls = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let bind = format_ident!("__f{}", i);
        let skip = is_skipped(&f.attrs)?;
        match &f.ident {
            Some(name) if skip => pats.push(quote!(#name: _)),
            Some(name) => pats.push(quote!(#name: #bind)),
            None if skip => pats.push(quote!(_)),
            None => pats.push(quote!(#bind)),
        }
        if !skip {
            let ty = &f.ty;
            calls.push(quote_spanned!(ty.span()=>
                <#ty as #krate::gc::Trace>::trace(#bind, __tracer);
            ));
        }
    }
    let pat = match fields {
        Fields::Named(_) => quote!({ #(#pats),* }),
        Fields::Unnamed(_) => quote!(( #(#pats),* )),
        Fields::Unit => quote!(),
    };
    Ok((pat, quote!(#(#calls)*)))
}

fn expand(mut input: DeriveInput) -> syn::Result<TokenStream2> {
    let attrs = type_attrs(&input.attrs)?;
    let krate = attrs
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::arenagc));
    let name = &input.ident;
    let body = match &input.data {
        Data::Struct(s) => {
            let (pat, calls) = fields_trace(&s.fields, &krate)?;
            quote!(let Self #pat = self; #calls)
        }
        Data::Enum(e) => {
            let mut arms = Vec::new();
            for v in &e.variants {
                let vname = &v.ident;
                let (pat, calls) = fields_trace(&v.fields, &krate)?;
                arms.push(quote!(Self::#vname #pat => { #calls }));
            }
            if arms.is_empty() {
                quote!(match *self {})
            } else {
                quote!(match self { #(#arms)* })
            }
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "Trace cannot be derived for unions",
            ));
        }
    };
    for p in input.generics.type_params_mut() {
        p.bounds.push(syn::parse_quote!(#krate::gc::Trace));
    }
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    // The path's own span: a function of the wrong type is reported at the attribute.
    let hook = |konst: &str, p: Path| {
        let konst = syn::Ident::new(konst, proc_macro2::Span::call_site());
        let value = quote_spanned!(p.span()=> ::core::option::Option::Some(#p));
        quote!(const #konst: ::core::option::Option<fn(&#krate::gc::Gc<Self>)> = #value;)
    };
    let finalize = attrs.finalize.map(|p| hook("FINALIZE", p));
    let legacy = attrs.legacy_del.map(|p| hook("LEGACY_DEL", p));
    // An identifier never contains a NUL, so the name is always a valid C string.
    let cname = proc_macro2::Literal::c_string(
        &std::ffi::CString::new(name.to_string()).expect("identifiers have no NUL"),
    );
    Ok(quote! {
        // SAFETY: generated: visits each owned field once (minus `#[trace(skip)]` fields).
        #[automatically_derived]
        #[allow(unused_variables)]
        unsafe impl #impl_g #krate::gc::Trace for #name #ty_g #where_c {
            #[inline]
            fn trace(&self, __tracer: &mut #krate::gc::Tracer) {
                #body
            }
            const NAME: &'static ::core::ffi::CStr = #cname;
            #finalize
            #legacy
        }
    })
}
