//! The attribute macro behind `#[lockhog::hogged(...)]`. Use it through the `lockhog` crate,
//! whose paths its expansion names.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ItemFn};

/// The attribute's argument: exactly one expression.
struct HoggerArg(Expr);

impl Parse for HoggerArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input
                .error("#[hogged] needs a hogger: #[lockhog::hogged(|| LOCK.lock().unwrap())]"));
        }
        let expr: Expr = input.parse()?;
        if !input.is_empty() {
            return Err(input
                .error("#[hogged] takes one hogger expression; wrap several locks in one hogger"));
        }
        Ok(HoggerArg(expr))
    }
}

/// Hogs a lock for the whole of a test function: `#[lockhog::hogged(<hogger>)]`.
///
/// On a plain `fn` (a `#[test]`), the body runs inside `lockhog::hog::hogged(<hogger>, ..)`,
/// so the hogger is a [sync hogger] (a closure returning a guard, a `LockHogger`, ...). On an
/// `async fn` (a `#[tokio::test]`), it runs inside `lockhog::hog::async_hogged`, so the hogger
/// is an [async hogger] (a closure returning a future of a guard, an `AsyncLockHogger`, ...).
/// The lock is released after the body, even when it panics; a hog that cannot be taken or
/// released fails the test with the hog's error.
///
/// Put it above `#[tokio::test]`, so that it sees the `async fn`: below, it sees the
/// synchronous function that `#[tokio::test]` made of it, and then takes a sync hogger, held
/// from a thread. With `#[test]`, either order works.
///
/// ```ignore
/// #[lockhog::hogged(|| PAY_LOCK.lock().unwrap())]
/// #[test]
/// fn refuses_to_pay_twice() {
///     assert!(pay_individual().is_err());
/// }
/// ```
///
/// [sync hogger]: https://docs.rs/lockhog/latest/lockhog/hog/trait.Hogger.html
/// [async hogger]: https://docs.rs/lockhog/latest/lockhog/hog/trait.AsyncHogger.html
#[proc_macro_attribute]
pub fn hogged(attr: TokenStream, item: TokenStream) -> TokenStream {
    let hogger = match syn::parse::<HoggerArg>(attr) {
        Ok(HoggerArg(e)) => e,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(_) => {
            return syn::Error::new(
                Span::call_site(),
                "#[hogged] goes on a test function (`fn` or `async fn`)",
            )
            .to_compile_error()
            .into()
        }
    };
    if !func.sig.inputs.is_empty() {
        return syn::Error::new_spanned(
            &func.sig.inputs,
            "#[hogged] goes on a test function, which takes no arguments",
        )
        .to_compile_error()
        .into();
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = sig.ident.to_string();
    let body = if sig.asyncness.is_some() {
        quote! {
            ::lockhog::hog::async_hogged(#hogger, async move #block)
                .await
                .unwrap_or_else(|e| panic!("#[lockhog::hogged] on {}: {}", #name, e))
        }
    } else {
        quote! {
            ::lockhog::hog::hogged(#hogger, move || #block)
                .unwrap_or_else(|e| panic!("#[lockhog::hogged] on {}: {}", #name, e))
        }
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
    .into()
}
