"""Object detection: data with boxes, torchvision detectors, the detection loop."""
