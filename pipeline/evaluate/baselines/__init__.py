"""Reference codecs scored beside speechtok in every evaluation report (issue 13)."""
