"""The GroundingGPT web demo as a Hugging Face Space (SDK: Gradio).

Copy this file to the root of a Space, with a `requirements.txt` that installs this package with its `web` extra
(see docs/web-demo.md). The Space variable `GROUNDINGGPT_MODEL` names the checkpoint (a Hub repo id of a converted
GroundingGPT); without it the page runs the embedded demo model. The Space sets the address and port.
"""

import os

from modeling_groundinggpt.web.app import build_demo, launch


demo = build_demo(os.environ.get("GROUNDINGGPT_MODEL") or None)

if __name__ == "__main__":
    launch(demo)
