//! `#[derive(Trace)]` for `arenagc`.
//!
//! Generates `unsafe impl arenagc::gc::Trace` whose `trace` visits every field (of a struct, or
//! of the active enum variant) in order, except fields marked `#[trace(skip)]`. Every type
//! parameter gets a `Trace` bound. Type attributes:
//!
//! - `#[trace(finalize = path)]`: `path: fn(&Gc<Self>)` becomes the PEP 442 finalizer;
//! - `#[trace(legacy_del = path)]`: `path: fn(&Gc<Self>)` becomes the legacy finalizer.
//!
//! The impl is sound because it visits exactly the fields the value owns, once each; a skipped
//! field holding a `Gc` only keeps its referent alive.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields, Path, parse_macro_input};

/// Derive `arenagc::gc::Trace`. See the crate docs for the attributes.
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
}

fn type_attrs(attrs: &[Attribute]) -> syn::Result<TypeAttrs> {
    let mut out = TypeAttrs::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("trace")) {
        a.parse_nested_meta(|m| {
            if m.path.is_ident("finalize") {
                out.finalize = Some(m.value()?.parse()?);
                Ok(())
            } else if m.path.is_ident("legacy_del") {
                out.legacy_del = Some(m.value()?.parse()?);
                Ok(())
            } else {
                Err(m.error("expected `finalize = path` or `legacy_del = path`"))
            }
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
                Err(m.error("expected `skip`"))
            }
        })?;
    }
    Ok(skip)
}

/// Bindings for the fields (`f0, f1, ...` or their names) and the trace calls of kept ones.
fn fields_trace(fields: &Fields) -> syn::Result<(TokenStream2, TokenStream2)> {
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
            calls.push(quote!(::arenagc::gc::Trace::trace(#bind, __tracer);));
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
    let name = &input.ident;
    let body = match &input.data {
        Data::Struct(s) => {
            let (pat, calls) = fields_trace(&s.fields)?;
            quote!(let Self #pat = self; #calls)
        }
        Data::Enum(e) => {
            let mut arms = Vec::new();
            for v in &e.variants {
                let vname = &v.ident;
                let (pat, calls) = fields_trace(&v.fields)?;
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
        p.bounds.push(syn::parse_quote!(::arenagc::gc::Trace));
    }
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    let hook = |konst: &str, p: Path| {
        let konst = syn::Ident::new(konst, proc_macro2::Span::call_site());
        quote!(const #konst: ::core::option::Option<fn(&::arenagc::gc::Gc<Self>)> =
            ::core::option::Option::Some(#p);)
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
        unsafe impl #impl_g ::arenagc::gc::Trace for #name #ty_g #where_c {
            #[inline]
            fn trace(&self, __tracer: &mut ::arenagc::gc::Tracer) {
                #body
            }
            const NAME: &'static ::core::ffi::CStr = #cname;
            #finalize
            #legacy
        }
    })
}
