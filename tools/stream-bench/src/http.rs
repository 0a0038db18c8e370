//! A minimal HTTP/1.1 client over one keep-alive TCP connection: requests with a body read by
//! Content-Length or chunked, and a streamed chunked (or close-delimited) body for the
//! server-sent events. Enough for this benchmark; nothing here is general.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(dead_code)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[allow(dead_code)]
impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    pos: usize,
}

pub fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub chunked: bool,
    pub length: Option<usize>,
    pub close: bool,
}

impl Conn {
    pub fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            buf: Vec::with_capacity(16384),
            pos: 0,
        }
    }

    async fn connected(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
            self.pos = 0;
        }
        Ok(self.stream.as_mut().unwrap())
    }

    pub fn close(&mut self) {
        self.stream = None;
        self.buf.clear();
        self.pos = 0;
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 65536 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let stream = self.stream.as_mut().ok_or_else(|| other("not connected"))?;
        let mut tmp = [0u8; 16384];
        let n = stream.read(&mut tmp).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Sends a request (connecting first when needed).
    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        let s = self.connected().await?;
        s.write_all(request).await
    }

    pub async fn read_head(&mut self) -> io::Result<Head> {
        let end = loop {
            if let Some(i) = find(self.avail(), b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let text = String::from_utf8_lossy(&self.avail()[..end]).into_owned();
        self.pos += end + 4;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| other(format!("bad status line {status_line:?}")))?;
        let mut head = Head {
            status,
            headers: Vec::new(),
            chunked: false,
            length: None,
            close: false,
        };
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_string(), v.trim().to_string());
                if k.eq_ignore_ascii_case("content-length") {
                    head.length = v.parse().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    head.chunked = true;
                } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                    head.close = true;
                }
                head.headers.push((k, v));
            }
        }
        Ok(head)
    }

    /// The next piece of a streamed body: a chunk's payload (chunked), or whatever arrived
    /// (close-delimited). None at the body's end.
    pub async fn next_piece(&mut self, chunked: bool) -> io::Result<Option<Vec<u8>>> {
        if !chunked {
            if self.avail().is_empty() {
                match self.fill().await {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            let piece = self.avail().to_vec();
            self.pos = self.buf.len();
            return Ok(Some(piece));
        }
        let line_end = loop {
            if let Some(i) = find(self.avail(), b"\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let size_text = String::from_utf8_lossy(&self.avail()[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| other(format!("bad chunk size {size_text:?}")))?;
        self.pos += line_end + 2;
        while self.avail().len() < size + 2 {
            self.fill().await?;
        }
        let piece = self.avail()[..size].to_vec();
        self.pos += size + 2;
        if size == 0 {
            return Ok(None);
        }
        Ok(Some(piece))
    }

    /// A whole response to a request already sent.
    pub async fn read_response(&mut self) -> io::Result<Response> {
        let head = self.read_head().await?;
        let mut body = Vec::new();
        if head.chunked {
            while let Some(p) = self.next_piece(true).await? {
                body.extend_from_slice(&p);
            }
        } else if let Some(n) = head.length {
            while self.avail().len() < n {
                self.fill().await?;
            }
            body.extend_from_slice(&self.avail()[..n]);
            self.pos += n;
        } else if head.status != 204 && head.status != 304 {
            while let Some(p) = self.next_piece(false).await? {
                body.extend_from_slice(&p);
            }
            self.close();
        }
        if head.close {
            self.close();
        }
        Ok(Response {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// One request and its response, reconnecting once when a kept-alive connection was closed.
    pub async fn call(&mut self, request: &[u8], deadline: Duration) -> io::Result<Response> {
        let fresh = self.stream.is_none();
        match tokio::time::timeout(deadline, async {
            self.send(request).await?;
            self.read_response().await
        })
        .await
        {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.close();
                if fresh {
                    return Err(e);
                }
                match tokio::time::timeout(deadline, async {
                    self.send(request).await?;
                    self.read_response().await
                })
                .await
                {
                    Ok(r) => r.inspect_err(|_| self.close()),
                    Err(_) => {
                        self.close();
                        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
                    }
                }
            }
            Err(_) => {
                self.close();
                Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
            }
        }
    }
}

pub fn get_request(path: &str, token: Option<&str>, accept: &str) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n");
    if let Some(t) = token {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

pub fn put_request(path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
