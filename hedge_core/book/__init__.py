"""The book: one view of every hedge a runner manages (issue 15, item 6; netting of item 5).

Pure logic, testable without a runner: :mod:`.model` (typed inputs and the snapshot),
:mod:`.aggregate` (net delta per asset, exposure/margin/liquidation per venue, funding per day,
LTV, drawdown), :mod:`.var` (portfolio VaR, historical and parametric), :mod:`.guards` (book
limits). The runner side lives in :mod:`.monitor`; the meaning of every number is in docs/book.md.
"""
