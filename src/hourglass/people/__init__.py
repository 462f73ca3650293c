"""The people of a picture and who is who through time: below the Predictor, which crops what this room finds.

- :mod:`~hourglass.people.boxes`: person boxes: checks, IoU, suppression, reading detection files, choosing the
  people of a picture (:class:`~hourglass.people.boxes.BoxChoice`);
- :mod:`~hourglass.people.detect`: published person detectors (ONNX files) on ONNX Runtime or OpenVINO;
- :mod:`~hourglass.people.track`: identities from frame to frame (Hungarian matching on IoU and OKS);
- :mod:`~hourglass.people.smooth`: the One Euro filter, per track and joint.

Imports ``data``, ``checkpoint`` (a published detector's file) and the leaves; never ``inference``.
"""
