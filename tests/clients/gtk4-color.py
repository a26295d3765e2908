#!/usr/bin/env python3
"""A GTK 4 window whose whole content is one CSS colour (default #00c000),
for tests/tests/real_clients.rs, which looks for that colour in the
screenshot where the compositor placed the window. Runs until killed."""
import sys

import gi

gi.require_version("Gtk", "4.0")
from gi.repository import Gtk  # noqa: E402

COLOR = sys.argv[1] if len(sys.argv) > 1 else "#00c000"


def on_activate(app):
    css = Gtk.CssProvider()
    css.load_from_data(f"window, .solid {{ background: {COLOR}; }}".encode())
    Gtk.StyleContext.add_provider_for_display(
        Gtk.Widget.get_display(Gtk.Label()), css, Gtk.STYLE_PROVIDER_PRIORITY_USER
    )
    win = Gtk.ApplicationWindow(application=app, title="gtk4-color")
    win.set_default_size(200, 150)
    win.set_decorated(False)
    box = Gtk.Box()
    box.add_css_class("solid")
    win.set_child(box)
    win.present()


app = Gtk.Application(application_id="dev.test.Gtk4Color")
app.connect("activate", on_activate)
sys.exit(app.run([]))
