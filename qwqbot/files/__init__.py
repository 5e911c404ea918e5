"""Files people share with a question: what they are, their text, and how much of it fits.

A core package: no Slack, no network. The Slack adapter (``qwqbot.slack.files``) downloads a
file and hands its bytes here; ``qwqbot ask --file`` hands a local file's bytes the same way.

- ``refs``: a shared file as plain data (what Slack's file object says about it).
- ``kinds``: which kind of file that is, from Slack's ``filetype``/``mimetype`` and the name.
- ``extract``: bytes -> text (text-like files, Slack posts, PDFs) or the reason there is none.
- ``cut``: a text shortened to a token count at a readable boundary.
- ``budget``: how the prompt's room is shared among a thread's files, and the footer's words.
- ``local``: files from the terminal (``qwqbot ask --file``).
"""
