"""The ComfyUI layer: one module per node, each a V3 ``io.ComfyNode``.

Node ids are public API (saved workflows store them): never rename one.
"""

from comfy_api.latest import ComfyExtension

from .best_of_n import LoTTSBestOfN
from .fan_out import LoTTSSeedFanOut
from .harmonize import LoTTSHarmonize
from .localizer import LoTTSDefectLocalizer
from .lotts_sampler import LoTTSSampler
from .mask_preview import LoTTSMaskPreview
from .masked_refine import LoTTSMaskedRefine
from .verifier_loader import LoTTSVerifierLoader
from .verifier_pick import LoTTSVerifierPick

# In the order the nodes appear in the "LoTTS" menu.
NODES = [LoTTSSeedFanOut, LoTTSDefectLocalizer, LoTTSMaskPreview, LoTTSMaskedRefine,
         LoTTSHarmonize, LoTTSVerifierLoader, LoTTSVerifierPick, LoTTSSampler, LoTTSBestOfN]


class LoTTSExtension(ComfyExtension):
    async def get_node_list(self):
        return list(NODES)


async def comfy_entrypoint() -> LoTTSExtension:
    return LoTTSExtension()
