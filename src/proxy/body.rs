//! Body adapters of the gateway: an idle timeout for bodies streamed in
//! either direction, and a streaming search-and-replace that rewrites
//! absolute upstream URLs in responses without buffering them.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Any body error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streamed body that sent nothing for too long.
#[derive(Debug, thiserror::Error)]
#[error("no data for {} s", .0.as_secs())]
pub struct Stalled(pub Duration);

/// Fails a body that yields nothing for `idle`.
pub struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    done: bool,
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: B, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            done: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                if !matches!(frame, Some(Ok(_))) {
                    this.done = true;
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    Poll::Ready(Some(Err(Box::new(Stalled(this.idle)))))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Replaces every occurrence of each needle in a streamed body, holding
/// back only the bytes that could start a match across a chunk boundary.
pub struct Rewrite<B> {
    inner: B,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    longest: usize,
    carry: BytesMut,
    done: bool,
}

impl<B> Rewrite<B> {
    /// Wraps `inner`, replacing each `(needle, replacement)`; empty needles
    /// are ignored.
    pub fn new(inner: B, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let pairs: Vec<_> = pairs.into_iter().filter(|(n, _)| !n.is_empty()).collect();
        let longest = pairs.iter().map(|(n, _)| n.len()).max().unwrap_or(1);
        Rewrite {
            inner,
            pairs,
            longest,
            carry: BytesMut::new(),
            done: false,
        }
    }

    /// Feeds `input`; returns what can be released (everything when `last`).
    fn process(&mut self, input: &[u8], last: bool) -> Bytes {
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(input);
        let mut out = BytesMut::with_capacity(buf.len() + 64);
        let mut pos = 0;
        loop {
            let hit = self
                .pairs
                .iter()
                .filter_map(|(n, r)| memchr::memmem::find(&buf[pos..], n).map(|at| (at, n, r)))
                .min_by_key(|(at, n, _)| (*at, usize::MAX - n.len()));
            let Some((at, needle, replacement)) = hit else {
                break;
            };
            out.extend_from_slice(&buf[pos..pos + at]);
            out.extend_from_slice(replacement);
            pos += at + needle.len();
        }
        let keep = if last {
            0
        } else {
            (self.longest - 1).min(buf.len() - pos)
        };
        out.extend_from_slice(&buf[pos..buf.len() - keep]);
        self.carry = BytesMut::from(&buf[buf.len() - keep..]);
        out.freeze()
    }
}

impl<B> Body for Rewrite<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.process(&data, false);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(trailers) => {
                        let out = this.process(&[], true);
                        if out.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        // Trailers after the last data are rare; the
                        // held-back bytes matter more.
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                },
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.done = true;
                    let out = this.process(&[], true);
                    if out.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    async fn rewrite(chunks: &[&str], pairs: &[(&str, &str)]) -> String {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c.as_bytes()))))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let pairs = pairs
            .iter()
            .map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec()))
            .collect();
        let out = Rewrite::new(body, pairs)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn rewrites_across_chunk_boundaries() {
        let up = "https://staging-api.pixop.com";
        let gw = "http://gw/proxy/pixop";
        let doc = format!(r#"{{"a":"{up}/videos/v1/x","b":"{up}/media/v1/y","c":"{up}"}}"#);
        let want = doc.replace(up, gw);
        // Every way of cutting the document in three.
        for i in 0..doc.len() {
            for j in i..doc.len() {
                let got = rewrite(&[&doc[..i], &doc[i..j], &doc[j..]], &[(up, gw)]).await;
                assert_eq!(got, want, "cut at {i},{j}");
            }
        }
        assert_eq!(
            rewrite(&["no match here"], &[(up, gw)]).await,
            "no match here"
        );
        assert_eq!(rewrite(&["ab", "ab"], &[("aba", "X")]).await, "Xb");
        // The longer needle wins where two start at the same place.
        assert_eq!(
            rewrite(&["http://h:1/x"], &[("http://h", "A"), ("http://h:1", "B")]).await,
            "B/x"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_time() {
        let (mut tx, rx) = futures_channel();
        let body = IdleTimeout::new(rx, Duration::from_secs(5));
        tx.push("one");
        let handle = tokio::spawn(async move { body.collect().await.map(|c| c.to_bytes()) });
        tokio::time::sleep(Duration::from_secs(6)).await;
        let err = handle.await.unwrap().unwrap_err();
        assert!(err.downcast_ref::<Stalled>().is_some(), "{err}");
        drop(tx);
    }

    /// A body fed from a channel that never ends unless dropped.
    struct ChannelBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);
    struct Feeder(tokio::sync::mpsc::UnboundedSender<Bytes>);
    impl Feeder {
        fn push(&mut self, s: &str) {
            let _ = self.0.send(Bytes::copy_from_slice(s.as_bytes()));
        }
    }
    fn futures_channel() -> (Feeder, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Feeder(tx), ChannelBody(rx))
    }
    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
        }
    }
}
