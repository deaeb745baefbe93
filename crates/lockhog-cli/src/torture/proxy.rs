//! The `cut` fault's loopback TCP proxy: one listener on 127.0.0.1 per server of the URL,
//! workers connect through it, and [`Proxy::cut`] closes both sides of every connection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A backend URL taken apart around its servers.
#[derive(Debug, PartialEq, Eq)]
pub struct Servers {
    /// Everything up to the first server (`scheme://user:pass@`).
    head: String,
    /// Everything after the last server (`/db?opts`).
    tail: String,
    scheme: String,
    /// The servers, in the URL's order.
    pub targets: Vec<SocketAddr>,
}

impl Servers {
    /// Finds the servers of `url`; an error says why `cut` cannot proxy it.
    pub fn parse(url: &str) -> Result<Servers, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("cut needs a network backend URL (scheme://host:port…)")?;
        let port = lockhog::backend::default_port(scheme)
            .ok_or_else(|| format!("cut needs a network backend; {scheme}: has no server"))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let hosts_at = authority.rfind('@').map_or(0, |i| i + 1);
        let mut targets = Vec::new();
        for host in authority[hosts_at..].split(',') {
            let (name, p) = match host.rsplit_once(':') {
                Some((n, p)) if !n.is_empty() && !p.contains(']') => (
                    n,
                    p.parse::<u16>()
                        .map_err(|_| format!("cut: bad port in {host:?}"))?,
                ),
                _ => (host, port),
            };
            let ip = match name {
                "127.0.0.1" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                "[::1]" => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                other => {
                    return Err(format!(
                        "cut proxies servers on this machine's loopback only, not {other:?}"
                    ))
                }
            };
            targets.push(SocketAddr::new(ip, p));
        }
        Ok(Servers {
            head: format!("{scheme}://{}", &authority[..hosts_at]),
            tail: rest[end..].to_string(),
            scheme: scheme.to_string(),
            targets,
        })
    }

    /// The URL with each server replaced by `via` (same order).
    pub fn through(&self, via: &[SocketAddr]) -> String {
        let hosts: Vec<String> = via.iter().map(|a| a.to_string()).collect();
        let mut url = format!("{}{}{}", self.head, hosts.join(","), self.tail);
        if self.scheme == "mysql" {
            // mysql_async would switch to the server's Unix socket, around the proxy.
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("prefer_socket=false");
        }
        url
    }
}

/// The running proxy. Dropping it stops its listeners; connections end at the next cut or
/// when either side closes.
pub struct Proxy {
    listeners: Vec<JoinHandle<()>>,
    conns: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    /// The proxy's own addresses, one per target.
    pub addrs: Vec<SocketAddr>,
}

impl Proxy {
    /// Listens on 127.0.0.1 for each of `targets`.
    pub async fn start(targets: &[SocketAddr]) -> std::io::Result<Proxy> {
        let conns: Arc<Mutex<HashMap<u64, AbortHandle>>> = Arc::default();
        let next = Arc::new(AtomicU64::new(0));
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for &target in targets {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
            addrs.push(listener.local_addr()?);
            let conns = conns.clone();
            let next = next.clone();
            listeners.push(tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    let map = conns.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(target).await {
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (mut c, mut s) = (client, server);
                            let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                        }
                        map.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    });
                    let mut map = conns.lock().unwrap_or_else(|p| p.into_inner());
                    if !task.is_finished() {
                        map.insert(id, task.abort_handle());
                    }
                }
            }));
        }
        Ok(Proxy {
            listeners,
            conns,
            addrs,
        })
    }

    /// Closes both sides of every open connection; returns how many.
    pub fn cut(&self) -> usize {
        let cut: Vec<AbortHandle> = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        // Aborting a task drops both of its streams, which closes them.
        for h in &cut {
            h.abort();
        }
        cut.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        self.cut();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_replaces_loopback_servers() {
        let s = Servers::parse("postgres://u:p@127.0.0.1:5433/db?x=1").unwrap();
        assert_eq!(s.targets, ["127.0.0.1:5433".parse().unwrap()]);
        let via: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(s.through(&[via]), "postgres://u:p@127.0.0.1:9/db?x=1");
        let r = Servers::parse("redlock://127.0.0.1:1,localhost:2,127.0.0.1:3").unwrap();
        assert_eq!(r.targets.len(), 3);
        assert_eq!(
            r.through(&[via, via, via]),
            "redlock://127.0.0.1:9,127.0.0.1:9,127.0.0.1:9"
        );
        let m = Servers::parse("mysql://u:p@localhost/db").unwrap();
        assert_eq!(m.targets, ["127.0.0.1:3306".parse().unwrap()]);
        assert_eq!(
            m.through(&[via]),
            "mysql://u:p@127.0.0.1:9/db?prefer_socket=false"
        );
        assert!(Servers::parse("redis://10.0.0.1:6379").is_err());
        assert!(Servers::parse("file:///tmp/x").is_err());
        assert!(Servers::parse("sqlite:///tmp/x.db").is_err());
    }
}
