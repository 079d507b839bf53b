"""Anki packages: cards as Anki notes (with schedule and review log) and back.

`html` converts between our Markdown and Anki's HTML fields, `export` writes a
package (genanki lays out the legacy collection; we add the schedule and revlog),
`read` opens any package with Anki's own engine (the `anki` package).
"""
