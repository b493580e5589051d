//! The two picture sinks of the window: `gtk4paintablesink` elements created
//! once on the main thread, handed to the engine as [`SinkFactory`]s (the
//! engine moves the same element from call to call), and their paintables
//! shown by `gtk::Picture`s. When the element cannot be made, the engine
//! discards the pictures and the window says so instead of failing.

use std::sync::Arc;

use gst::prelude::*;
use gtk::gdk;

use crate::media::SinkFactory;

/// A sink element and the paintable it draws into.
pub struct VideoSink {
    /// The element (kept here too, so its last reference drops on this thread).
    pub element: gst::Element,
    /// What a `gtk::Picture` shows.
    pub paintable: gdk::Paintable,
}

impl VideoSink {
    /// Makes a `gtk4paintablesink`, registering the element first when this
    /// GStreamer does not know it.
    ///
    /// # Errors
    /// When GStreamer cannot be initialised or the element cannot be made.
    pub fn new(name: &str) -> anyhow::Result<VideoSink> {
        use anyhow::Context;
        crate::media::init().context("initialising GStreamer")?;
        if gst::ElementFactory::find("gtk4paintablesink").is_none() {
            gstgtk4::plugin_register_static().context("registering gtk4paintablesink")?;
        }
        let element = gst::ElementFactory::make("gtk4paintablesink")
            .name(name)
            .build()
            .context("creating gtk4paintablesink")?;
        let paintable = element.property::<gdk::Paintable>("paintable");
        Ok(VideoSink { element, paintable })
    }

    /// A factory that hands the engine this element for every call.
    pub fn factory(&self) -> SinkFactory {
        let element = self.element.clone();
        Arc::new(move || Some(element.clone()))
    }
}
