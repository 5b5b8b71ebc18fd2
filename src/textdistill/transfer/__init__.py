"""The pseudo-labelled transfer set: teacher logits for unannotated (and augmented) messages.

``augment.augment`` is not re-exported here, so that ``textdistill.transfer.augment`` stays the module.
"""

from textdistill.transfer.augment import AugmentConfig
from textdistill.transfer.score import label_messages
from textdistill.transfer.store import TransferSet

__all__ = ["AugmentConfig", "TransferSet", "label_messages"]
