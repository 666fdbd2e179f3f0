"""Browser tests (marker `browser`): Playwright driving Debian's Chromium through the dashboards."""
