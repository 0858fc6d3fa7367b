"""The staff web console at ``/console/``: server-rendered pages for commissioners and managers."""
