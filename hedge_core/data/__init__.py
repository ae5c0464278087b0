"""Market data in: ccxt downloader, file importers, demo market generator, quality report."""
